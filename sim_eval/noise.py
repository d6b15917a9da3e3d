"""Noise injection for demo collection (DART, Laskey et al. 2017, "DART: Noise Injection for Robust Imitation
Learning").

A policy trained only on an expert's clean trajectories never sees the states its own small errors lead to (a
gripper 1-2 cm beside the cube), so it has no idea how to recover from them and stalls there. With
``ActionNoise`` the robot executes ``expert action + n_t`` while the demo records the expert's own action: the
closed-loop expert keeps correcting the drift, so the data holds off-path states labelled with the corrective
action. ``n_t`` is an AR(1) process per arm dimension (persistent drifts rather than white jitter, which the
controller would average away), stationary std ``scale`` in action units; gripper dims are never perturbed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ActionNoise:
    """``scale``: stationary std of the perturbation (action units, arm dims); ``correlation``: its AR(1)
    coefficient per control step (0 = white noise; 0.8 = drifts lasting ~5 steps)."""

    scale: float
    correlation: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.scale <= 1.0:
            raise ValueError(f"--action-noise {self.scale:g}: the std must be in [0, 1] (action units)")
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"action noise correlation {self.correlation:g}: must be in [0, 1)")

    def stream(self, seed: int, action_dim: int, gripper_dims: Sequence[int] = (),
               low: float = -1.0, high: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
        """A per-episode perturbation: ``executed = perturb(action)`` (same seed -> same noise sequence)."""
        rng = np.random.default_rng([int(seed), zlib.crc32(b"action_noise")])
        arm = np.ones(action_dim, bool)
        arm[list(gripper_dims)] = False
        rho, innovation = self.correlation, self.scale * np.sqrt(1.0 - self.correlation**2)
        state = {"n": rng.normal(0.0, self.scale, action_dim)}

        def perturb(action: np.ndarray) -> np.ndarray:
            n = state["n"]
            out = np.asarray(action, np.float64).copy()
            out[arm] = np.clip(out[arm] + n[arm], low, high)
            state["n"] = rho * n + innovation * rng.normal(size=action_dim)
            return out.astype(np.float32)

        return perturb
