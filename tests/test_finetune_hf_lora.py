"""Adapters on an ``hf:`` backbone (tiny random PaliGemma by path): save/reload keeps the base and
the adapter's actions; the base path is untouched by the adapter."""

import dataclasses

import numpy as np
import pytest
import torch

from finetune.config import LoraSettings, TrainConfig
from finetune.trainer import setup_trainable
from tests.hf_tiny import save_tiny_paligemma
from tests.vla_helpers import observation, panda_spec
from vla.config import BackboneConfig, tiny_config
from vla.policy import VLAPolicy


@pytest.mark.slow
def test_lora_adapter_on_hf_backbone_roundtrip(tmp_path):
    hub = save_tiny_paligemma(tmp_path / "tiny-paligemma")
    cfg = dataclasses.replace(tiny_config(image_size=(32, 32)),
                              backbone=BackboneConfig(kind="hf", hf_model=str(hub), num_lm_layers=2))
    policy = VLAPolicy.create(cfg, [panda_spec("panda"), panda_spec("panda2")])
    obs = [observation(seed=0, size=48)]
    base_actions = policy.predict(obs, embodiment="panda", seed=0)[0]
    params = setup_trainable(policy, TrainConfig(lora=LoraSettings(rank=2, alpha=4)), "panda2")
    assert params and all(p.requires_grad for p in params)
    with torch.no_grad():  # stand-in for training: move every adapter parameter
        for p in params:
            p.add_(torch.randn_like(p) * 0.05)
    policy.model.eval()
    adapter_actions = policy.predict(obs, embodiment="panda2", seed=0)[0]
    assert not np.allclose(adapter_actions, base_actions)
    np.testing.assert_allclose(policy.predict(obs, embodiment="panda", seed=0)[0], base_actions, atol=1e-6)
    path = policy.save_pretrained(tmp_path / "ckpt")
    assert (path / "adapters" / "panda2" / "adapter_config.json").exists()
    again = VLAPolicy.from_pretrained(path)
    np.testing.assert_allclose(again.predict(obs, embodiment="panda", seed=0)[0], base_actions, atol=1e-5)
    np.testing.assert_allclose(again.predict(obs, embodiment="panda2", seed=0)[0], adapter_actions, atol=1e-5)
