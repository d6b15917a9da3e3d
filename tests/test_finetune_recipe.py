"""The ``vla demo`` model preset: patchify-stem conv encoders, frozen (cached) MiniLM, small expert."""

from __future__ import annotations

import numpy as np
import torch

from finetune.recipes import demo_config
from vla.backbones.embedded import ConvImageEncoder
from vla.policy import VLAPolicy
from vla_helpers import observation, panda_spec


def test_patchify_stem_feature_sizes():
    enc = ConvImageEncoder((32, 64, 64), grid=3, out_dim=40, stem=4)
    sizes = []
    x = torch.zeros(2, 3, 84, 84)
    for layer in enc.convs:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(x.shape[1:]))
    assert sizes == [(32, 21, 21), (64, 11, 11), (64, 6, 6)]
    assert enc(torch.zeros(2, 3, 84, 84, dtype=torch.uint8)).shape == (2, 9, 40)


def test_demo_preset_trains_only_encoders_and_expert():
    cfg = demo_config()
    policy = VLAPolicy.create(cfg, [panda_spec()])
    model = policy.model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(n.startswith("backbone.lm") for n in trainable)  # the pretrained MiniLM is frozen ...
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n_train < 3e6 and n_total > 20e6, (n_train, n_total)  # ... and is most of the parameters
    obs = [observation(seed=s, size=84) for s in range(2)]
    model.train()
    batch = policy.collate([{**o, "actions": np.zeros((16, 7), np.float32), "action_pad": np.zeros(16, bool),
                             "embodiment": "panda"} for o in obs])
    loss = model.compute_loss(batch)
    loss.backward()
    assert model.backbone.image_encoder.convs[0].weight.grad is not None
    assert len(model.backbone._text_cache) == 1  # ... and its instruction features are cached, not recomputed
    model.eval()
    chunks = policy.predict(obs, seed=0)
    assert [c.shape for c in chunks] == [(16, 7), (16, 7)]
