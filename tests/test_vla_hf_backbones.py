"""Tiny random PaliGemma, Idefics3 (SmolVLM) and Qwen2.5-VL checkpoints, saved to disk and loaded by path
through the same from_pretrained code path a hub id takes; a training step and predict on each."""

import dataclasses

import numpy as np
import pytest
import torch

from tests.hf_tiny import save_tiny_idefics3, save_tiny_paligemma, save_tiny_qwen2_5_vl
from tests.vla_helpers import observation, panda_spec
from vla.config import BackboneConfig, tiny_config
from vla.policy import VLAPolicy


@pytest.mark.parametrize("family, builder", [("paligemma", save_tiny_paligemma), ("idefics3", save_tiny_idefics3),
                                             ("qwen2_5_vl", save_tiny_qwen2_5_vl)])
def test_hf_backbone_train_step_predict_and_reload(tmp_path, family, builder):
    hub_dir = builder(tmp_path / f"tiny-{family}")
    cfg = dataclasses.replace(
        tiny_config(image_size=(32, 32)),
        backbone=BackboneConfig(kind="hf", hf_model=str(hub_dir), num_lm_layers=2),
    )
    policy = VLAPolicy.create(cfg, [panda_spec()])
    backbone = policy.model.backbone
    assert backbone.family == family
    assert len(backbone.language_model.layers) == 2  # truncated to the first K layers

    rng = np.random.default_rng(0)
    samples = [
        {**observation(seed=i, size=48, prompt="lift the red cube"),
         "actions": rng.uniform(-1, 1, (8, 7)).astype(np.float32),
         "action_pad": np.zeros(8, bool), "embodiment": "panda"}
        for i in range(2)
    ]
    del samples[1]["images"]["wrist"]  # a missing view is masked, not an error
    batch = policy.collate(samples)
    model = policy.model.train()
    lm_param = next(p for n, p in backbone.language_model.named_parameters() if "q_proj" in n)
    before = lm_param.detach().clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(2):  # the expert's output layer starts at zero (adaLN-zero): step 2 reaches the VLM
        opt.zero_grad()
        loss = model.compute_loss(batch)
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    assert lm_param.grad is not None and lm_param.grad.abs().sum() > 0  # gradients reach the VLM
    assert not torch.equal(before, lm_param.detach())
    model.eval()

    obs = [{k: s[k] for k in ("images", "state", "prompt")} for s in samples]
    actions = policy.predict(obs, seed=0)
    assert [a.shape for a in actions] == [(8, 7), (8, 7)] and all(np.isfinite(a).all() for a in actions)
    # the missing wrist view changes nothing but what it should: masking, not zeros leaking in
    full = policy.predict([observation(seed=1, size=48)], seed=0)[0]
    assert not np.allclose(full, actions[1])

    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    reloaded = VLAPolicy.from_pretrained(ckpt)
    again = reloaded.predict(obs, seed=0)
    for a, b in zip(actions, again):
        assert np.array_equal(a, b)
