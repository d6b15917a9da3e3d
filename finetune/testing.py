"""Small synthetic datasets for tests and benchmarks (real RLDS files via the data pipeline's writer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vla.types import EmbodimentSpec


def toy_spec(name: str = "toy_arm", action_dim: int = 7, state_dim: int = 9,
             cameras: tuple[str, ...] = ("agentview", "wrist")) -> EmbodimentSpec:
    return EmbodimentSpec(name=name, cameras=cameras, state_dim=state_dim, action_dim=action_dim,
                          gripper_dims=(action_dim - 1,), image_size=(64, 64))


def write_toy_dataset(out_dir: str | os.PathLike, name: str = "toy_arm", episodes: int = 4, steps: int = 24,
                      seed: int = 0, spec: EmbodimentSpec | None = None, size: int = 64) -> Path:
    """An RLDS dataset whose actions depend on the state and images (learnable, deterministic)."""
    from data_pipelines.rlds.writer import write_rlds

    spec = spec or toy_spec(name)
    rng = np.random.default_rng(seed)
    eps = []
    for e in range(episodes):
        state = rng.normal(0, 1, (steps, spec.state_dim)).astype(np.float32)
        w = rng.normal(0, 0.3, (spec.state_dim, spec.action_dim)).astype(np.float32)
        actions = np.tanh(state @ w).astype(np.float32)
        actions[:, -1] = np.sign(state[:, 0])
        obs = {"state": state}
        for c in spec.cameras:
            img = rng.integers(0, 255, (steps, size, size, 3), dtype=np.uint8)
            img[:, : size // 2] = (state[:, :1, None, None] > 0) * 200
            obs[c] = img
        eps.append({"steps": {"observation": obs, "action": actions,
                              "language_instruction": "lift the cube" if e % 2 == 0 else "pick up the block"},
                    "metadata": {"episode_id": f"{name}_{e}"}})
    return write_rlds(eps, out_dir, name, spec, episodes_per_shard=2)
