"""The deterministic numpy stand-in Policy behind ``vla serve --toy`` (client development, benchmarks, tests).

Its chunk depends on every input (image means, state, prompt, embodiment, seed), so a server that
mixed up requests, dropped a camera or ignored the seed is caught.  ``call_ms`` sleeps once per
``predict`` call (not per observation) to mimic an accelerator whose forward pass costs about the
same for a batch as for one observation.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

import numpy as np

from vla.normalization import NormStats
from vla.types import (
    EmbodimentSpec,
    InvalidObservationError,
    PolicyMetadata,
    per_observation_seeds,
    validate_observation,
)


def toy_embodiments() -> list[EmbodimentSpec]:
    arm = EmbodimentSpec(
        name="toy_arm",
        cameras=("agentview", "wrist"),
        state_dim=8,
        action_dim=7,
        gripper_dims=(6,),
        action_stats=NormStats.from_data(np.linspace(-2, 2, 70).reshape(10, 7), skip_dims=(6,)),
    )
    other = EmbodimentSpec(
        name="toy_joint", cameras=("front",), state_dim=6, action_dim=6, action_space="joint_pos", requires_prompt=False
    )
    return [arm, other]


class ToyPolicy:
    """Deterministic scripted stand-in implementing ``vla.types.Policy``."""

    def __init__(self, embodiments: Sequence[EmbodimentSpec] | None = None, horizon: int = 10, call_ms: float = 0.0):
        embs = list(embodiments or toy_embodiments())
        self._meta = PolicyMetadata({e.name: e for e in embs}, embs[0].name, horizon, model="toy-policy")
        self.call_ms = call_ms
        self.calls: list[int] = []  # batch size of each predict call

    @property
    def metadata(self) -> PolicyMetadata:
        return self._meta

    def reset(self) -> None:
        pass

    def predict(self, observations, *, embodiment=None, seed=None, prev_actions=None, delay_steps=None):
        """Chunks as described in the module doc; with a real-time-chunking prefix the first ``delay_steps``
        rows are the committed ``prev_actions`` (no inpainting: a stand-in)."""
        name = embodiment or self._meta.default_embodiment
        if name not in self._meta.embodiments:
            raise InvalidObservationError("embodiment", f"one of {sorted(self._meta.embodiments)}", repr(name))
        spec = self._meta.embodiments[name]
        seeds = per_observation_seeds(seed, len(observations))
        self.calls.append(len(observations))
        out = []
        for i, (obs, s) in enumerate(zip(observations, seeds)):
            validate_observation(obs, spec, i)
            feats = [
                float(np.asarray(obs["images"][c], np.float32).mean()) / 255.0 if c in obs["images"] else -1.0
                for c in spec.cameras
            ]
            state = np.asarray(obs.get("state", np.zeros(spec.state_dim)), np.float32)
            bias = (zlib.crc32(obs.get("prompt", "").encode()) % 1000) / 1000.0
            rng = np.random.default_rng(s)
            noise = rng.standard_normal((self._meta.action_horizon, spec.action_dim)).astype(np.float32) * 0.1
            base = np.float32(sum(feats) + float(state.sum()) * 0.01 + bias)
            steps = np.arange(self._meta.action_horizon, dtype=np.float32)[:, None] * 0.01
            out.append(spec.unnormalize_action(np.tanh(base + steps + noise)).astype(np.float32))
        from vla.model.rtc import check_prefix, per_observation_prefixes

        for i, (prev, d) in enumerate(per_observation_prefixes(prev_actions, delay_steps, len(observations))):
            prefix = check_prefix(prev, d, spec.action_dim, self._meta.action_horizon, index=i)
            if prefix is not None:
                out[i][: prefix.delay] = prefix.actions[: prefix.delay]
        if self.call_ms:
            time.sleep(self.call_ms / 1000.0)
        return out


def toy_observation(
    spec: EmbodimentSpec, rng: np.random.Generator, size: int = 32, prompt: str = "pick up the cube"
) -> dict:
    """A random valid observation for ``spec``."""
    return {
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in spec.cameras},
        "state": rng.standard_normal(spec.state_dim).astype(np.float32),
        "prompt": prompt,
    }
