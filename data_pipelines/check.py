"""Compatibility of data with a checkpoint's embodiment (``vla check DATA --checkpoint CKPT``).

Before fine-tuning on a dataset or serving a robot, compare what the data looks like with what the
checkpoint was trained on: cameras, image sizes, state/action dims and their meaning, the gripper
convention, and per-dim norm-stats drift (z-shift = |mean_data - mean_ckpt| / std_ckpt).  DATA is a
dataset (RLDS / LeRobot directory, anything ``open_dataset`` reads) or a recorded observation file
(``.npz`` with ``images/<camera>`` uint8[(N,)H,W,3], ``state`` float[(N,)S], optional ``prompt``).

Each check is a row: ``ok``, ``warn`` (worth a look, exit 0) or ``FAIL`` (exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla.normalization import NormStats
from vla.types import EmbodimentSpec

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class CheckConfig:
    z_threshold: float = 1.0  # a dim whose mean moved by more than this many checkpoint stds fails
    std_ratio: float = 3.0  # a dim whose std grew or shrank by more than this factor warns
    flip_margin: float = 0.25  # gripper: open fractions this far apart, and mirrored, count as a flip


@dataclass(frozen=True)
class DataSummary:
    """What the data shows: its declared spec (if any), frames, dims and stats in robot units."""

    source: str
    cameras: tuple[str, ...]
    image_sizes: Mapping[str, tuple[int, int]]
    state_dim: int
    action_dim: int | None  # None: an observation file has no actions
    state_stats: NormStats | None
    action_stats: NormStats | None
    spec: EmbodimentSpec | None = None  # a dataset's declared embodiment (spaces, gripper dims)


@dataclass(frozen=True)
class Row:
    check: str
    status: str
    data: str
    checkpoint: str
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, check: str, status: str, data, ckpt, note: str = "") -> None:
        self.rows.append(Row(check, status, str(data), str(ckpt), note))

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == FAIL]

    def table(self) -> str:
        w = [max(len(h), *(len(getattr(r, k)) for r in self.rows)) for h, k in
             (("check", "check"), ("status", "status"), ("data", "data"), ("checkpoint", "checkpoint"))]
        w = [min(x, 40) for x in w]
        head = f"{'check':<{w[0]}}  {'status':<{w[1]}}  {'data':<{w[2]}}  {'checkpoint':<{w[3]}}  note"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.check:<{w[0]}}  {r.status:<{w[1]}}  {r.data[:40]:<{w[2]}}  {r.checkpoint[:40]:<{w[3]}}"
                         f"  {r.note}")
        return "\n".join(lines)


# -- what the data shows ----------------------------------------------------------------------
def summarize_observations(path: Path) -> DataSummary:
    """A recorded observation file: ``images/<cam>`` [(N,)H,W,3] uint8, ``state`` [(N,)S]."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cams = tuple(sorted(k[len("images/"):] for k in arrays if k.startswith("images/")))
    if not cams and "state" not in arrays:
        raise ValueError(f"{path}: no images/<camera> or state arrays (keys: {sorted(arrays)})")
    sizes = {}
    for c in cams:
        img = arrays[f"images/{c}"]
        if img.ndim not in (3, 4) or img.shape[-1] != 3:
            raise ValueError(f"{path}: images/{c} has shape {list(img.shape)}, expected [(N,)H,W,3]")
        sizes[c] = (int(img.shape[-3]), int(img.shape[-2]))
    state = np.atleast_2d(np.asarray(arrays.get("state", np.zeros((1, 0))), np.float64))
    stats = NormStats.from_data(state) if state.shape[1] else None
    return DataSummary(str(path), cams, sizes, state.shape[1], None, stats, None)


def summarize_dataset(data: str, *, max_episodes: int | None = None, **open_kw) -> DataSummary:
    """A dataset: its spec, the frames of its first episode, and its (cached) norm stats."""
    from data_pipelines.sources import open_dataset
    from data_pipelines.stats import NormConfig, get_stats

    src = open_dataset(data, **open_kw)
    first = next(iter(src.iter_episodes()), None)
    if first is None:
        raise ValueError(f"{data}: the dataset has no episodes")
    sizes = {c: (int(v.shape[1]), int(v.shape[2])) for c, v in first["images"].items() if v is not None and v.size}
    r = get_stats(src, NormConfig(max_episodes=max_episodes), progress=False)
    return DataSummary(str(src.dir), tuple(c for c in src.spec.cameras if c in sizes), sizes,
                       int(first["state"].shape[1]), int(first["actions"].shape[1]),
                       r.state if r.state.dim else None, r.action, spec=src.spec)


# -- the checks -------------------------------------------------------------------------------
def _open_fraction(stats: NormStats, d: int) -> tuple[str, float]:
    """(range class, where the mean sits in that range): 0..1 gripper data vs -1..1 gripper data."""
    lo = -1.0 if min(stats.q01[d], stats.mean[d]) < -0.05 else 0.0
    kind = "[-1,1]" if lo < 0 else "[0,1]"
    if stats.q99[d] > 1.05 or stats.q01[d] < -1.05:
        kind = "other"
    return kind, (stats.mean[d] - lo) / (1.0 - lo)


def check_gripper(rep: Report, data: NormStats, ckpt: NormStats, dims, cfg: CheckConfig) -> None:
    for d in dims:
        if d >= min(data.dim, ckpt.dim):
            continue
        (kd, pd), (kc, pc) = _open_fraction(data, d), _open_fraction(ckpt, d)
        shown = f"{kd} mean {data.mean[d]:.2f}", f"{kc} mean {ckpt.mean[d]:.2f}"
        if kd != kc:
            rep.add(f"gripper dim {d}", FAIL, *shown, "different range: convert the gripper convention")
        elif abs(pd - pc) > cfg.flip_margin and abs(pd - (1 - pc)) < abs(pd - pc) / 2:
            rep.add(f"gripper dim {d}", FAIL, *shown, "mirrored: open/closed flipped vs the checkpoint")
        else:
            rep.add(f"gripper dim {d}", OK, *shown)


def check_drift(rep: Report, label: str, data: NormStats, ckpt: NormStats, skip, cfg: CheckConfig) -> None:
    """Per dim: z-shift of the mean in checkpoint stds, and the std ratio."""
    for d in range(min(data.dim, ckpt.dim)):
        if d in skip:
            continue
        std = max(ckpt.std[d], 1e-6)
        z = abs(data.mean[d] - ckpt.mean[d]) / std
        ratio = max(data.std[d], 1e-6) / std
        status = FAIL if z > cfg.z_threshold else WARN if not 1 / cfg.std_ratio <= ratio <= cfg.std_ratio else OK
        note = f"z-shift {z:.2f} (limit {cfg.z_threshold:g}), std x{ratio:.2f}"
        rep.add(f"{label} dim {d} stats", status, f"{data.mean[d]:.3g}±{data.std[d]:.3g}",
                f"{ckpt.mean[d]:.3g}±{ckpt.std[d]:.3g}", note)


def compare(data: DataSummary, spec: EmbodimentSpec, model_image_size, cfg: CheckConfig = CheckConfig()) -> Report:
    rep = Report()
    missing = [c for c in spec.cameras if c not in data.cameras]
    extra = [c for c in data.cameras if c not in spec.cameras]
    rep.add("cameras", FAIL if missing else WARN if extra else OK, ",".join(data.cameras) or "-",
            ",".join(spec.cameras), (f"missing {missing} (served masked, never trained so) " if missing else "")
            + (f"extra {extra} (ignored)" if extra else ""))
    for c in spec.cameras:
        if c not in data.image_sizes:
            continue
        h, w = data.image_sizes[c]
        want = spec.image_size
        if want is not None and tuple(want) != (h, w):
            rep.add(f"image {c}", FAIL, f"{h}x{w}", f"{want[0]}x{want[1]}", "the embodiment fixes this size")
        elif abs(h / w - model_image_size[0] / model_image_size[1]) > 0.05:
            rep.add(f"image {c}", WARN, f"{h}x{w}", f"model {model_image_size[0]}x{model_image_size[1]}",
                    "aspect ratio differs: resized (stretched) or padded per the model's image_mode")
        else:
            rep.add(f"image {c}", OK, f"{h}x{w}", f"model {model_image_size[0]}x{model_image_size[1]}")
    rep.add("state dim", OK if data.state_dim == spec.state_dim else FAIL, data.state_dim, spec.state_dim)
    if data.action_dim is not None:
        rep.add("action dim", OK if data.action_dim == spec.action_dim else FAIL, data.action_dim, spec.action_dim)
    if data.spec is not None:
        for key in ("action_space", "state_space"):
            a, b = getattr(data.spec, key), getattr(spec, key)
            rep.add(key, OK if a == b else FAIL, a, b)
        gd, gc = tuple(data.spec.gripper_dims), tuple(spec.gripper_dims)
        rep.add("gripper dims", OK if gd == gc else FAIL, list(gd), list(gc))
    if data.action_stats is not None and spec.action_stats is not None:
        check_gripper(rep, data.action_stats, spec.action_stats, spec.gripper_dims, cfg)
        check_drift(rep, "action", data.action_stats, spec.action_stats, set(spec.gripper_dims), cfg)
    if data.state_stats is not None and spec.state_stats is not None and data.state_dim == spec.state_dim:
        check_drift(rep, "state", data.state_stats, spec.state_stats, set(), cfg)
    elif spec.state_stats is None or data.state_stats is None:
        rep.add("state stats", WARN, "yes" if data.state_stats else "none", "yes" if spec.state_stats else "none",
                "not compared")
    return rep
