"""The ``vla demo`` model preset: patchify-stem conv encoders with keypoint tokens, frozen (cached) MiniLM,
small expert."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vla_helpers import observation, panda_spec

from finetune.recipes import demo_config
from vla.backbones.embedded import ConvImageEncoder, SpatialSoftmax
from vla.policy import VLAPolicy


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


def test_spatial_softmax_finds_the_peak():
    kp = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        kp.to_maps.weight.fill_(1.0)
        kp.to_maps.bias.zero_()
        kp.log_temperature.fill_(np.log(0.01))  # sharp: the expectation sits on the argmax
    x = torch.zeros(1, 1, 6, 8)
    x[0, 0, 2, 5] = 1.0  # row 2 of 6, column 5 of 8
    (px, py), = kp(x)[0].tolist()
    assert px == pytest.approx(-1 + 2 * 5 / 7, abs=1e-3) and py == pytest.approx(-1 + 2 * 2 / 5, abs=1e-3)
    x = torch.zeros(1, 1, 6, 8)
    x[0, 0, 4, 1] = 1.0  # the keypoint follows the object
    (px, py), = kp(x)[0].tolist()
    assert px == pytest.approx(-1 + 2 * 1 / 7, abs=1e-3) and py == pytest.approx(-1 + 2 * 4 / 5, abs=1e-3)


def test_keypoint_token_per_camera_and_masked_with_its_camera():
    cfg = demo_config()
    assert cfg.backbone.image_keypoints > 0
    enc = ConvImageEncoder((32, 64, 64), grid=3, out_dim=40, stem=4, keypoints=16)
    assert enc.tokens_per_image == 10 and enc(torch.zeros(2, 3, 84, 84, dtype=torch.uint8)).shape == (2, 10, 40)
    policy = VLAPolicy.create(cfg, [panda_spec()])
    full, no_wrist = observation(seed=0, size=84), observation(seed=1, size=84)
    del no_wrist["images"]["wrist"]
    batch = policy.collate([{**full, "embodiment": "panda"}, {**no_wrist, "embodiment": "panda"}])
    _, mask = policy.model.backbone(batch["images"], batch["image_mask"], batch["prompt"])
    per_cam = cfg.backbone.image_grid**2 + 1  # grid tokens + one keypoint token
    assert mask[0, :2 * per_cam].all()  # agentview then wrist, both present in row 0
    assert mask[1, :per_cam].all() and not mask[1, per_cam:2 * per_cam].any()  # row 1's missing wrist, keypoints too
    alone = policy.collate([{**no_wrist, "embodiment": "panda"}])
    _, mask_alone = policy.model.backbone(alone["images"], alone["image_mask"], alone["prompt"])
    assert mask_alone.shape[1] == mask.shape[1] - per_cam  # no row has the wrist: its slot leaves the prefix
