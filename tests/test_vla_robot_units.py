"""Robot units end to end: RLDS files with known raw actions -> quantile stats from the real pipeline -> a short
real training run -> ``predict`` returns those raw actions (gripper dim never normalized)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.rlds.writer import write_rlds
from finetune.config import TrainConfig
from finetune.trainer import train
from vla.config import tiny_config
from vla.policy import VLAPolicy
from vla.types import EmbodimentSpec

pytestmark = pytest.mark.slow  # one short real training run (~25 s alone, ~55 s on 2 busy cores)

SPEC = EmbodimentSpec(name="units_arm", cameras=("front",), state_dim=2, action_dim=4, gripper_dims=(3,))
# two kinds of episodes, told apart by the state; actions constant within an episode, in raw units of varied scale
KINDS = {0: np.array([0.5, -20.0, 300.0, 1.0], np.float32), 1: np.array([0.7, -10.0, 100.0, -1.0], np.float32)}
STATES = {0: np.array([3.0, -50.0], np.float32), 1: np.array([-3.0, 50.0], np.float32)}


def _obs(kind):
    return {"images": {"front": np.full((16, 16, 3), 90, np.uint8)}, "state": STATES[kind], "prompt": "move"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    eps = []
    for e in range(4):
        kind, T = e % 2, 12
        eps.append({"steps": {"observation": {"front": np.full((T, 16, 16, 3), 90, np.uint8),
                                              "state": np.tile(STATES[kind], (T, 1))},
                              "action": np.tile(KINDS[kind], (T, 1)), "language_instruction": "move"}})
    return write_rlds(eps, tmp_path_factory.mktemp("units"), "units_demos", SPEC, image_encoding="png")


def test_predict_returns_raw_units_after_training(dataset, tmp_path):
    torch.set_num_threads(2)
    cfg = tiny_config(image_size=(16, 16), action_horizon=4, max_action_dim=4, max_state_dim=2, max_cameras=1)
    cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, num_lm_layers=1, max_prompt_tokens=4, freeze_lm=True))
    data = PipelineConfig.for_model(cfg, (DatasetConfig(str(dataset)),), augment=None, seed=0, cache_mb=16)
    spec = Pipeline(data, progress=False).embodiments["units_arm"]
    a = np.stack(list(KINDS.values()))
    assert spec.action_stats.mode == ("quantile",) * 3 + ("none",)
    np.testing.assert_allclose(spec.action_stats.q01[:3], np.quantile(a[:, :3].repeat(24, 0), 0.01, axis=0), rtol=1e-5)
    policy = VLAPolicy.create(cfg, [spec], seed=0)
    # only the action expert trains (the state tells the two kinds apart): ~90 short steps
    train(policy, data, TrainConfig(steps=90, batch_size=8, lr=3e-3, warmup_steps=10, tensorboard=False,
                                    progress=False, save_every=10_000, freeze=("backbone",)),
          tmp_path / "run", log=lambda s: None)
    policy = VLAPolicy.from_pretrained(tmp_path / "run" / "policy")
    for kind, want in KINDS.items():
        got = policy.predict([_obs(kind)], seed=1)[0]
        assert got.shape == (4, 4)
        scale = np.abs(KINDS[0] - KINDS[1])  # tolerance: 15 % of the raw spread of each dim
        assert (np.abs(got - want) <= 0.15 * scale).all(), (kind, got, want)
        assert np.all(np.sign(got[:, 3]) == want[3]) and np.abs(np.abs(got[:, 3]) - 1).max() < 0.3  # raw +-1 gripper
