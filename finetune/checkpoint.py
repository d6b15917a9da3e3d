"""Training checkpoints: a policy checkpoint directory (the live weights) plus ``training_state/``
(optimizer, scheduler, RNG, EMA, data position; ``meta.json``), written atomically (temp dir + rename),
keep-last-K, and lookup of the latest one for exact resume."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla.checkpoint import check_checkpoint_dir

STEP_DIR = re.compile(r"^step_(\d{6,})$")


def checkpoint_dirs(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir/checkpoints`` as (step, path), oldest first."""
    root = Path(out_dir) / "checkpoints"
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = STEP_DIR.match(p.name)
            if m and (p / "training_state" / "state.pt").exists() and _is_checkpoint(p):
                found.append((int(m.group(1)), p))
    return sorted(found)


def _is_checkpoint(path: Path) -> bool:
    try:
        check_checkpoint_dir(path, None)
    except FileNotFoundError:
        return False
    return True


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    found = checkpoint_dirs(out_dir)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(out_dir: str | os.PathLike, step: int, write_policy, training_state: dict[str, Any],
                    meta: dict[str, Any], keep_last: int) -> Path:
    """``write_policy(path)`` writes the policy directory; ``training_state`` goes to
    ``training_state/state.pt`` (torch objects) and ``meta`` to ``training_state/meta.json``.
    The whole directory appears at once under ``checkpoints/step_NNNNNN``; older ones beyond
    ``keep_last`` are deleted."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp-step_{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_policy(tmp)
        ts = tmp / "training_state"
        ts.mkdir(exist_ok=True)
        torch.save(training_state, ts / "state.pt")
        (ts / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in checkpoint_dirs(out_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_state(ckpt: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ts = Path(ckpt) / "training_state"
    state = torch.load(ts / "state.pt", map_location="cpu", weights_only=False)
    meta = json.loads((ts / "meta.json").read_text())
    return state, meta
