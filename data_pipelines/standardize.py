"""Standardize raw episodes into the shared vocabulary through a declarative key mapping.

A :class:`KeyMapping` (JSON/YAML file or dict; no code) says which raw keys are which camera, which
keys concatenate into ``state`` and ``action``, the gripper convention, and where the instruction is.
Key paths look like ``steps/observation/image`` (per step), ``episode_metadata/task`` (per episode,
broadcast), optionally sliced: ``steps/observation/robot_obs[0:7]``. Example (YAML)::

    name: my_arm                      # embodiment name
    cameras: {primary: steps/observation/front, wrist: steps/observation/hand}
    state: [steps/observation/joints, steps/observation/gripper_width]
    action: [steps/action/delta_xyz, steps/action/delta_rpy, steps/action/grip]
    gripper: {dims: [6], convention: close_pm1}   # see GRIPPER_CONVENTIONS
    instruction: steps/language_instruction       # or episode_metadata/..., or {text: "fixed prompt"}
    action_space: eef_delta_pos3_rot3_gripper1
    control_hz: 10

Registered OXE datasets are made uniform: gripper in [0, 1], **1 = open, 0 = closed**. Own data
keeps its gripper values as recorded unless a ``convention`` asks for the conversion (the policy
then predicts in that convention, so the robot must use it too).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from data_pipelines.errors import DataError, MissingKeyError
from vla.types import EmbodimentSpec

GRIPPER_CONVENTIONS = {
    "raw": "left exactly as recorded (the robot's own units; the default for own data)",
    "open_1": "absolute in [0,1], 1 = open (already uniform)",
    "close_1": "absolute in [0,1], 1 = closed",
    "open_pm1": "absolute in [-1,1], +1 = open",
    "close_pm1": "absolute in [-1,1], +1 = closed",
    "relative_close_pm1": "relative command: +1 close, -1 open, 0 keep (RT-1 style); integrated to absolute",
    "open_bool": "boolean, True = open",
}


class StandardEpisode(TypedDict):
    """One episode in the shared vocabulary (robot units, unnormalized)."""

    images: dict[str, np.ndarray]  # camera -> uint8[T, H, W, 3]; absent cameras are missing
    state: np.ndarray  # float32[T, S]
    actions: np.ndarray  # float32[T, A]; gripper dims in [0, 1], 1 = open
    prompt: str
    embodiment: str
    episode_id: str


def convert_gripper(x: np.ndarray, convention: str) -> np.ndarray:
    """Map a gripper signal ``x[T]`` in ``convention`` to the uniform [0, 1], 1 = open (``raw``: unchanged)."""
    x = np.asarray(x, np.float32)
    if convention == "raw":
        return x
    if convention == "open_1":
        return np.clip(x, 0.0, 1.0)
    if convention == "close_1":
        return 1.0 - np.clip(x, 0.0, 1.0)
    if convention == "open_pm1":
        return (np.clip(x, -1.0, 1.0) + 1.0) / 2.0
    if convention == "close_pm1":
        return (1.0 - np.clip(x, -1.0, 1.0)) / 2.0
    if convention == "open_bool":
        return (x > 0.5).astype(np.float32)
    if convention == "relative_close_pm1":
        out = np.empty_like(x)
        nz = np.flatnonzero(np.abs(x) > 1e-3)
        state = 1.0 if len(nz) == 0 else float(x[nz[0]] > 0)  # before the first command: the opposite of it
        for t, v in enumerate(x):
            if v > 1e-3:
                state = 0.0
            elif v < -1e-3:
                state = 1.0
            out[t] = state
        return out
    raise ValueError(f"unknown gripper convention {convention!r}; known: {sorted(GRIPPER_CONVENTIONS)}")


_SLICE = re.compile(r"^(?P<path>[^\[\]]+?)(?:\[(?P<lo>-?\d*):(?P<hi>-?\d*)\])?$")


def flat_keys(node: Any, prefix: str = "") -> list[str]:
    """All leaf key paths of a nested dict."""
    if isinstance(node, Mapping):
        out = []
        for k, v in node.items():
            if str(k).startswith("_"):
                continue
            out.extend(flat_keys(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    return [prefix]


def split_slice(key: str) -> tuple[str, int | None, int | None]:
    """``"steps/a/b[lo:hi]"`` -> (``"steps/a/b"``, lo, hi); no slice -> (path, None, None)."""
    m = _SLICE.match(key.strip())
    if not m:
        raise ValueError(f"bad key path {key!r}")
    lo = int(m["lo"]) if m["lo"] else None
    hi = int(m["hi"]) if m["hi"] else None
    return m["path"].strip("/"), lo, hi


def _walk(node: Any, parts: list[str], child) -> Any:
    """Follow ``parts`` down ``node``; a feature name may itself contain '/' (bc_z's ``future/xyz_residual``), so
    the longest run of parts naming a child is taken first. ``child(node, name)`` -> sub-node or None."""
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            sub = child(node, "/".join(parts[i:j]))
            if sub is not None:
                node, i = sub, j
                break
        else:
            return None
    return node


def resolve_path(spec: dict, path: str) -> dict | None:
    """The leaf of a :mod:`data_pipelines.rlds.features` spec at ``path`` (e.g. ``steps/observation/image``)."""

    def child(node, name):
        if isinstance(node, dict) and node.get("kind") == "steps":
            node = node["feature"]
        return node.get(name) if isinstance(node, dict) and "kind" not in node else None

    return _walk(spec, path.split("/"), child)


def lookup(ep: Mapping[str, Any], key: str, where: str = "", episode: Any = None) -> Any:
    """Fetch ``steps/a/b[lo:hi]`` from a raw episode; MissingKeyError lists the keys found."""
    path, lo, hi = split_slice(key)
    if not (path.startswith("steps/") or path.startswith("episode_metadata/") or path in ep):
        path = "steps/" + path
    node = _walk(ep, path.split("/"), lambda n, k: n[k] if isinstance(n, Mapping) and k in n else None)
    if node is None:
        raise MissingKeyError(f"key {path!r} not found; keys found: {flat_keys(ep)}", file=where or None,
                              episode=episode, field=path)
    if (lo, hi) != (None, None):
        node = np.asarray(node)[..., lo:hi]
    return node


@dataclass(frozen=True)
class KeyMapping:
    """Declarative raw-keys -> shared-vocabulary mapping (see module docstring)."""

    name: str
    cameras: dict[str, str]
    action: tuple[str, ...]
    state: tuple[str, ...] = ()
    gripper_dims: tuple[int, ...] = ()
    gripper_convention: str = "raw"
    instruction: str | None = "steps/language_instruction"
    instruction_text: str | None = None  # fixed prompt when the data has none
    instruction_encoding: str = "text"  # or "utf8_codes" (int arrays of UTF-8 bytes, e.g. language_table)
    action_space: str = "eef_delta_pos3_rot3_gripper1"
    state_space: str = ""
    action_is_delta: tuple[bool, ...] = ()
    control_hz: float = 10.0
    execute_horizon: int = 4
    drop_blank_cameras: bool = True  # an all-zero camera stream is a placeholder: treat as absent
    description: str = ""

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError(f"mapping {self.name!r}: needs at least one camera")
        if not self.action:
            raise ValueError(f"mapping {self.name!r}: needs at least one action key")
        if self.gripper_convention not in GRIPPER_CONVENTIONS:
            raise ValueError(f"mapping {self.name!r}: unknown gripper convention {self.gripper_convention!r}; "
                             f"known: {sorted(GRIPPER_CONVENTIONS)}")
        if self.instruction_encoding not in ("text", "utf8_codes"):
            raise ValueError(f"mapping {self.name!r}: instruction_encoding must be 'text' or 'utf8_codes'")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> KeyMapping:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)} | {"gripper"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{source}: unknown mapping fields {unknown}; known: {sorted(known)}")
        grip = d.pop("gripper", None)
        if grip:
            d["gripper_dims"] = tuple(grip.get("dims", ()))
            d["gripper_convention"] = grip.get("convention", "raw")
        instr = d.get("instruction")
        if isinstance(instr, Mapping):
            d["instruction"] = None
            d["instruction_text"] = instr.get("text")
        for k in ("action", "state"):
            if isinstance(d.get(k), str):
                d[k] = (d[k],)
            if k in d:
                d[k] = tuple(d[k])
        for k in ("gripper_dims", "action_is_delta"):
            if k in d:
                d[k] = tuple(d[k])
        for req in ("name", "cameras", "action"):
            if req not in d:
                raise ValueError(f"{source}: mapping needs {req!r}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from e

    @classmethod
    def load(cls, path: str | Path) -> KeyMapping:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"mapping file {p} not found")
        text = p.read_text()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            d = yaml.safe_load(text)
        else:
            d = json.loads(text)
        if not isinstance(d, Mapping):
            raise ValueError(f"{p}: a mapping file must hold one JSON/YAML object")
        return cls.from_dict(d, str(p))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # -- application ----------------------------------------------------------------------
    def embodiment(self, state_dim: int, action_dim: int, image_size: tuple[int, int] | None = None) -> EmbodimentSpec:
        return EmbodimentSpec(
            name=self.name, cameras=tuple(self.cameras), state_dim=state_dim, action_dim=action_dim,
            action_space=self.action_space, state_space=self.state_space or f"raw{state_dim}",
            action_is_delta=self.action_is_delta, gripper_dims=self.gripper_dims, control_hz=self.control_hz,
            execute_horizon=self.execute_horizon, image_size=image_size,
            requires_prompt=self.instruction is not None or bool(self.instruction_text), description=self.description,
        )

    def _concat(self, ep, keys, T, file, episode, what) -> np.ndarray:
        parts = []
        for key in keys:
            v = lookup(ep, key, file, episode)
            arr = np.asarray(v)
            if arr.dtype == bool:
                arr = arr.astype(np.float32)
            if not np.issubdtype(arr.dtype, np.number):
                raise DataError(f"expected a numeric array, got dtype {arr.dtype}", file=file, episode=episode,
                                field=key)
            if key.lstrip("/").startswith("episode_metadata/"):
                arr = np.broadcast_to(np.atleast_1d(arr), (T, *np.atleast_1d(arr).shape))
            if arr.ndim == 1:
                arr = arr[:, None]
            elif arr.ndim > 2:
                arr = arr.reshape(arr.shape[0], -1)
            if arr.ndim != 2 or arr.shape[0] != T:
                raise DataError(f"{what} part must be [T={T}, D] (or [T]), got shape {list(arr.shape)}",
                                file=file, episode=episode, field=key)
            parts.append(arr.astype(np.float32))
        return np.concatenate(parts, axis=1) if parts else np.zeros((T, 0), np.float32)

    def _prompt(self, ep, file, episode) -> str:
        if self.instruction is None:
            return self.instruction_text or ""
        v = lookup(ep, self.instruction, file, episode)
        if self.instruction_encoding == "utf8_codes":
            codes = np.asarray(v)
            codes = codes[0] if codes.ndim == 2 else codes
            return bytes(int(c) for c in codes if c != 0).decode("utf-8", errors="replace")
        if isinstance(v, (list, tuple, np.ndarray)):
            items = [x.decode() if isinstance(x, bytes) else str(x) for x in list(v)]
            return next((s for s in items if s.strip()), "")
        return v.decode() if isinstance(v, bytes) else str(v)

    def apply(self, ep: Mapping[str, Any], spec: EmbodimentSpec | None = None, file: str = "",
              episode: Any = None, with_images: bool = True) -> StandardEpisode:
        """Raw episode -> :class:`StandardEpisode`; checks dims against ``spec`` when given."""
        ref = ep.get("_ref")
        if ref is not None:
            file = file or ref.file
            episode = episode if episode is not None else ref.describe()
        actions = self._concat(ep, self.action, self._length(ep, file, episode), file, episode, "action")
        T = actions.shape[0]
        state = self._concat(ep, self.state, T, file, episode, "state")
        if spec is not None:
            for what, arr, dim in (("action", actions, spec.action_dim), ("state", state, spec.state_dim)):
                if arr.shape[1] != dim:
                    keys = self.action if what == "action" else self.state
                    raise DataError(f"{what} has {arr.shape[1]} dims from keys {list(keys)}, but embodiment "
                                    f"{spec.name!r} declares {what}_dim={dim}", file=file, episode=episode, field=what)
        for d in self.gripper_dims:
            if d >= actions.shape[1]:
                raise DataError(f"gripper dim {d} outside the action's {actions.shape[1]} dims", file=file,
                                episode=episode, field="action")
            actions[:, d] = convert_gripper(actions[:, d], self.gripper_convention)
        images = {}
        for cam, key in self.cameras.items() if with_images else ():
            img = np.asarray(lookup(ep, key, file, episode))
            if img.ndim != 4 or img.shape[0] != T or img.shape[-1] != 3 or img.dtype != np.uint8:
                raise DataError(f"camera {cam!r} must be uint8[T={T},H,W,3], got {img.dtype}{list(img.shape)}",
                                file=file, episode=episode, field=key)
            if self.drop_blank_cameras and not img.any():
                continue
            images[cam] = img
        meta = ep.get("episode_metadata") or {}
        eid = meta.get("episode_id", meta.get("file_path", "")) if isinstance(meta, Mapping) else ""
        return StandardEpisode(images=images, state=state, actions=actions, prompt=self._prompt(ep, file, episode),
                               embodiment=spec.name if spec else self.name,
                               episode_id=str(eid if eid not in (None, "") else episode))

    def _length(self, ep, file, episode) -> int:
        v = np.asarray(lookup(ep, self.action[0], file, episode))
        return int(v.shape[0]) if v.ndim else 1


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its published feature spec, key mapping and embodiment."""

    name: str
    features: dict  # data_pipelines.rlds.features spec, exactly as published
    mapping: KeyMapping
    spec: EmbodimentSpec
    aliases: tuple[str, ...] = field(default=())
    source: str = ""  # where the feature spec was taken from
