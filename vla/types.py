"""The shared vocabulary: observations, action chunks, embodiment specs and the Policy interface.

Every package speaks these types: data pipelines produce them, sim eval and the server consume
``Policy.predict``; nothing outside ``vla`` needs to know how a model works.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

from vla.normalization import NormStats


class Observation(TypedDict, total=False):
    """One timestep as a robot sends it (unbatched numpy).

    ``images``: camera name -> uint8[H, W, 3]; a camera of the embodiment may be absent (masked).
    ``state``: float32[S] in the robot's units.  ``prompt``: the instruction.
    """

    images: dict[str, np.ndarray]
    state: np.ndarray
    prompt: str


ActionChunk = np.ndarray  # float32[H, A] in the robot's own units


class InvalidObservationError(ValueError):
    """Raised for malformed input to ``predict``; names the field, what was expected and what came."""

    def __init__(self, field_name: str, expected: str, got: str, index: int | None = None):
        where = f"observations[{index}].{field_name}" if index is not None else field_name
        super().__init__(f"{where}: expected {expected}, got {got}")
        self.field = where
        self.expected = expected
        self.got = got


@dataclass(frozen=True)
class EmbodimentSpec:
    """What a robot looks like to a policy: cameras, state/action layout, units, norm stats."""

    name: str
    cameras: tuple[str, ...]
    state_dim: int
    action_dim: int
    action_space: str = "eef_delta_pos3_rot3_gripper1"  # e.g. joint_pos, eef_abs_pos3_quat4_gripper1
    state_space: str = "eef_pos3_quat4_gripper2"
    action_is_delta: tuple[bool, ...] = ()  # per action dim; empty = all delta
    gripper_dims: tuple[int, ...] = ()  # action dims that are gripper commands (never normalized)
    control_hz: float = 20.0
    execute_horizon: int = 8  # how many actions of each predicted chunk the robot executes
    image_size: tuple[int, int] | None = None  # (H, W) the robot sends; None = any
    requires_prompt: bool = True
    state_stats: NormStats | None = None
    action_stats: NormStats | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"EmbodimentSpec.name must be a non-empty name without '/'; got {self.name!r}")
        if not self.cameras:
            raise ValueError(f"EmbodimentSpec {self.name!r}: needs at least one camera")
        if self.state_dim < 0 or self.action_dim <= 0:
            raise ValueError(f"EmbodimentSpec {self.name!r}: bad dims state={self.state_dim} action={self.action_dim}")
        if self.action_is_delta and len(self.action_is_delta) != self.action_dim:
            raise ValueError(
                f"EmbodimentSpec {self.name!r}: action_is_delta has {len(self.action_is_delta)} entries, "
                f"action_dim is {self.action_dim}"
            )
        for d in self.gripper_dims:
            if not 0 <= d < self.action_dim:
                raise ValueError(f"EmbodimentSpec {self.name!r}: gripper dim {d} outside action_dim {self.action_dim}")
        for label, stats, dim in (("state", self.state_stats, self.state_dim), ("action", self.action_stats,
                                                                                self.action_dim)):
            if stats is not None and stats.dim != dim:
                raise ValueError(f"EmbodimentSpec {self.name!r}: {label}_stats has {stats.dim} dims, expected {dim}")
        if self.execute_horizon <= 0:
            raise ValueError(f"EmbodimentSpec {self.name!r}: execute_horizon must be > 0")

    def with_stats(self, state_stats: NormStats | None, action_stats: NormStats | None) -> EmbodimentSpec:
        return dataclasses.replace(self, state_stats=state_stats, action_stats=action_stats)

    # -- normalization in robot units <-> model units --------------------------------------
    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        return self.state_stats.normalize(state) if self.state_stats else np.asarray(state, np.float32)

    def normalize_action(self, action: np.ndarray) -> np.ndarray:
        return self.action_stats.normalize(action) if self.action_stats else np.asarray(action, np.float32)

    def unnormalize_action(self, action: np.ndarray) -> np.ndarray:
        return self.action_stats.unnormalize(action) if self.action_stats else np.asarray(action, np.float32)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["state_stats"] = self.state_stats.to_dict() if self.state_stats else None
        d["action_stats"] = self.action_stats.to_dict() if self.action_stats else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbodimentSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"EmbodimentSpec: unknown fields {sorted(unknown)}")
        d = dict(d)
        for key in ("cameras", "action_is_delta", "gripper_dims"):
            if key in d:
                d[key] = tuple(d[key])
        if d.get("image_size") is not None:
            d["image_size"] = tuple(d["image_size"])
        for key in ("state_stats", "action_stats"):
            if d.get(key) is not None:
                d[key] = NormStats.from_dict(d[key])
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> EmbodimentSpec:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: invalid embodiment spec: {e}") from e


@dataclass(frozen=True)
class PolicyMetadata:
    """What a client needs to know about a policy before querying it."""

    embodiments: dict[str, EmbodimentSpec]
    default_embodiment: str
    action_horizon: int
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "embodiments": {k: v.to_dict() for k, v in self.embodiments.items()},
            "default_embodiment": self.default_embodiment,
            "action_horizon": self.action_horizon,
            "model": self.model,
            "extra": self.extra,
        }


@runtime_checkable
class Policy(Protocol):
    """One interface for local models, remote servers and scripted experts."""

    @property
    def metadata(self) -> PolicyMetadata: ...

    def predict(
        self,
        observations: list[Observation],
        *,
        embodiment: str | None = None,
        seed: int | Sequence[int] | None = None,
    ) -> list[ActionChunk]:
        """Return one float32[H, A] chunk (robot units) per observation.

        ``seed`` fixes the sampling noise: an int applies to every observation (so a batch gives the
        same actions as each observation alone), a sequence gives one seed per observation.
        """
        ...

    def reset(self) -> None: ...


def per_observation_seeds(seed: int | Sequence[int] | None, n: int) -> list[int | None]:
    """``Policy.predict``'s ``seed`` as one entry per observation (an int or None applies to all)."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return [None if seed is None else int(seed)] * n
    seeds = [int(s) for s in seed]
    if len(seeds) != n:
        raise ValueError(f"seed: got {len(seeds)} seeds for {n} observations")
    return seeds


def validate_observation(obs: Any, spec: EmbodimentSpec, index: int | None = None) -> Observation:
    """Check one observation against an embodiment; raise InvalidObservationError naming the field."""
    if not isinstance(obs, dict):
        raise InvalidObservationError("", "a dict with images/state/prompt", type(obs).__name__, index)
    images = obs.get("images")
    if not isinstance(images, dict):
        raise InvalidObservationError("images", "dict camera name -> uint8[H,W,3]", type(images).__name__, index)
    unknown = sorted(set(images) - set(spec.cameras))
    if unknown:
        raise InvalidObservationError(
            "images", f"cameras among {list(spec.cameras)} (embodiment {spec.name!r})",
                f"unknown camera(s) {unknown}", index
        )
    if not any(images.get(c) is not None for c in spec.cameras):
        raise InvalidObservationError("images", f"at least one of cameras {list(spec.cameras)}", "none", index)
    for cam, img in images.items():
        if img is None:
            continue
        if not isinstance(img, np.ndarray):
            raise InvalidObservationError(f"images.{cam}", "numpy uint8[H,W,3]", type(img).__name__, index)
        if img.dtype != np.uint8:
            raise InvalidObservationError(f"images.{cam}", "dtype uint8", f"dtype {img.dtype}", index)
        if img.ndim != 3 or img.shape[-1] != 3 or img.shape[0] < 8 or img.shape[1] < 8:
            raise InvalidObservationError(f"images.{cam}", "shape [H>=8, W>=8, 3]", f"shape {list(img.shape)}", index)
    state = obs.get("state")
    if spec.state_dim > 0:
        if state is None:
            raise InvalidObservationError("state", f"float32[{spec.state_dim}]", "missing", index)
        state_arr = np.asarray(state)
        if not np.issubdtype(state_arr.dtype, np.floating):
            raise InvalidObservationError("state", "a float array", f"dtype {state_arr.dtype}", index)
        if state_arr.shape != (spec.state_dim,):
            raise InvalidObservationError("state", f"shape [{spec.state_dim}]", f"shape {list(state_arr.shape)}", index)
        if not np.all(np.isfinite(state_arr)):
            raise InvalidObservationError("state", "finite values", "NaN or inf", index)
    prompt = obs.get("prompt", "")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise InvalidObservationError("prompt", "str", type(prompt).__name__, index)
    if spec.requires_prompt and not prompt.strip():
        raise InvalidObservationError("prompt", f"a non-empty instruction (embodiment {spec.name!r} requires one)",
                                      "empty", index)
    return obs  # type: ignore[return-value]


class TrainingSample(TypedDict, total=False):
    """One training example as the data pipeline hands it to the model's ``collate``.

    Values are already *normalized* with the embodiment's stats (the pipeline's normalize stage);
    the model's collate pads dims, orders cameras into slots, resizes images and builds masks.
    """

    images: dict[str, np.ndarray]  # camera -> uint8[H, W, 3]; missing cameras are absent
    state: np.ndarray  # float32[S], normalized
    prompt: str
    actions: np.ndarray  # float32[H, A], normalized; H = the model's action horizon
    action_pad: np.ndarray  # bool[H]: True where the chunk ran past the episode end
    embodiment: str  # EmbodimentSpec.name
