"""The ``vla.types`` names the client speaks, usable without the full project.

With the project installed (server, sim eval) these are ``vla.types``' own classes, so a remote
policy raises the same ``InvalidObservationError`` and returns the same metadata as a local one.
On a robot computer (only this light distribution installed) small stand-ins with the same field
names are used; they keep the fields a controller needs and leave norm stats as plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

try:
    from vla.types import EmbodimentSpec, InvalidObservationError, PolicyMetadata, per_observation_seeds
except ImportError:  # the robot-side distribution alone

    def per_observation_seeds(seed, n: int) -> list:  # type: ignore[no-redef]
        """``predict``'s ``seed`` as one entry per observation (an int or None applies to all)."""
        if seed is None or isinstance(seed, (int, np.integer)):
            return [None if seed is None else int(seed)] * n
        seeds = [int(s) for s in seed]
        if len(seeds) != n:
            raise ValueError(f"seed: got {len(seeds)} seeds for {n} observations")
        return seeds

    class InvalidObservationError(ValueError):  # type: ignore[no-redef]
        """Malformed observation; names the field, what was expected and what came (as ``vla.types``)."""

        def __init__(self, field_name: str, expected: str, got: str, index: int | None = None):
            where = f"observations[{index}].{field_name}" if index is not None else field_name
            super().__init__(f"{where}: expected {expected}, got {got}")
            self.field = where
            self.expected = expected
            self.got = got

    @dataclass(frozen=True)
    class EmbodimentSpec:  # type: ignore[no-redef]
        """An embodiment as ``GET /v1/metadata`` describes it (the fields a controller needs)."""

        name: str
        cameras: tuple[str, ...]
        state_dim: int
        action_dim: int
        action_space: str = ""
        state_space: str = ""
        control_hz: float = 20.0
        execute_horizon: int = 8
        image_size: tuple[int, int] | None = None
        requires_prompt: bool = True
        extra: dict[str, Any] = field(default_factory=dict)  # everything else (norm stats, ...)

        @classmethod
        def from_dict(cls, d: dict[str, Any]) -> EmbodimentSpec:
            known = {f.name for f in fields(cls)} - {"extra"}
            kw = {k: v for k, v in d.items() if k in known}
            kw["cameras"] = tuple(kw.get("cameras", ()))
            if kw.get("image_size") is not None:
                kw["image_size"] = tuple(kw["image_size"])
            return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    @dataclass(frozen=True)
    class PolicyMetadata:  # type: ignore[no-redef]
        """What a client needs to know about a policy before querying it."""

        embodiments: dict[str, EmbodimentSpec]
        default_embodiment: str
        action_horizon: int
        model: str = ""
        extra: dict[str, Any] = field(default_factory=dict)


def metadata_from_dict(d: dict[str, Any]) -> PolicyMetadata:
    """``GET /v1/metadata`` (or the openpi WebSocket's first frame) -> PolicyMetadata."""
    embodiments = {k: EmbodimentSpec.from_dict(v) for k, v in d["embodiments"].items()}
    return PolicyMetadata(
        embodiments=embodiments,
        default_embodiment=d["default_embodiment"],
        action_horizon=int(d["action_horizon"]),
        model=d.get("model", ""),
        extra=d.get("extra", {}),
    )


__all__ = ["EmbodimentSpec", "InvalidObservationError", "PolicyMetadata", "metadata_from_dict", "per_observation_seeds"]
