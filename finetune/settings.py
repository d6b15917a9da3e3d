"""The settings that fix a run's data stream and batches, recorded in ``train_config.json`` and every
checkpoint's meta, so a rerun into the same output directory resumes only the run it would continue."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from finetune.config import TrainConfig


def _mapping(m: Any) -> Any:
    if m is None or isinstance(m, dict):
        return m
    if hasattr(m, "to_dict"):  # a KeyMapping object
        return m.to_dict()
    return os.path.abspath(m)


def data_settings(data) -> dict[str, Any]:
    """The data mixture (paths, weights, mappings, cameras) and the transforms of a ``PipelineConfig``."""
    datasets = [{"path": os.path.abspath(d.path) if d.data_dir is None and "://" not in d.path else d.path,
                 "name": d.name,
                 "mapping": _mapping(d.mapping), "split": d.split, "weight": d.weight, "data_dir": d.data_dir,
                 "cameras": list(d.cameras) if d.cameras is not None else None} for d in data.datasets]
    skip = {"datasets", "on_error", "cache_mb"}  # neither changes the samples
    rest = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in skip}
    return _jsonable({"datasets": datasets, **rest})


def run_settings(data, cfg: TrainConfig, world_size: int, embodiment: str | None) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint: data, batch composition, what trains and the batch
    augmentation (checkpoints from before it was recorded compare as augmentation off)."""
    return _jsonable({"data": data_settings(data), "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum,
                      "processes": world_size, "num_workers": cfg.num_workers, "seed": cfg.seed,
                      "embodiment": embodiment, "lora": cfg.lora, "freeze": cfg.freeze,
                      "augment": cfg.augment})


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else str(o)))


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """``'key.path: old -> new'`` for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in differences(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def check_same_settings(ckpt: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Refuse to resume ``ckpt`` with other data/batch settings (checkpoints from before the record: no check)."""
    if old is None:
        return
    diffs = differences(old, new)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ValueError(f"{ckpt.parent.parent}: its checkpoint {ckpt.name} was trained with other data/batch settings "
                         f"({shown}); resuming would not continue that run. Pass --no-resume (Python: resume=False) "
                         "to start over in this directory, or choose another --out")
