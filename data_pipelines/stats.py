"""Normalization statistics: computed once over a dataset (with a progress bar) and cached.

The cache file ``vla_norm_stats-<hash>.json`` lives beside the data (the TFDS version directory or
LeRobot root); if that directory is read-only it goes to ``$VLA_CACHE_DIR`` (default
``~/.cache/vla/norm_stats``). The hash covers the dataset identity (path, split, mapping, shard
sizes and mtimes) and the normalization config, so changing either recomputes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vla.normalization import NormStats
from vla.types import EmbodimentSpec

log = logging.getLogger(__name__)
STATS_VERSION = 1


@dataclass(frozen=True)
class NormConfig:
    """How state/actions are normalized: ``quantile`` (q01/q99 -> [-1, 1]) or ``zscore``.

    Gripper dims of the embodiment and ``skip_action_dims``/``skip_state_dims`` are left untouched.
    ``max_episodes`` limits the episodes the stats are computed from (None = all).
    """

    mode: str = "quantile"
    skip_action_dims: tuple[int, ...] = ()
    skip_state_dims: tuple[int, ...] = ()
    max_episodes: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("quantile", "zscore"):
            raise ValueError(f"NormConfig.mode must be 'quantile' or 'zscore'; got {self.mode!r}")


@dataclass(frozen=True, kw_only=True)
class StatsResult:
    state: NormStats
    action: NormStats
    path: Path
    from_cache: bool
    episodes: int
    steps: int


def cache_key(source, config: NormConfig) -> str:
    payload = json.dumps({"v": STATS_VERSION, "source": source.key, "data": source.fingerprint(),
                          "config": asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _writable(d: Path) -> bool:
    """Writable and not marked read-only (no write bit: honoured even for root)."""
    try:
        if not d.stat().st_mode & 0o222:
            return False
        with tempfile.NamedTemporaryFile(dir=d, prefix=".vla_write_test"):
            return True
    except OSError:
        return False


def cache_path(source, config: NormConfig, name: str | None = None) -> Path | str:
    """Beside the data when writable (or already there, even remote: then read-only), else under
    ``$VLA_CACHE_DIR`` (default ``~/.cache/vla``)/norm_stats. Remote data directories are never written to."""
    from data_pipelines.rlds import fs

    name = name or f"vla_norm_stats-{cache_key(source, config)}.json"
    beside = fs.join(source.dir, name)
    if fs.isfile(beside) or (not fs.is_url(source.dir) and _writable(Path(source.dir))):
        return beside
    return _local_cache(name)


def _local_cache(name: str) -> Path:
    fallback = Path(os.environ.get("VLA_CACHE_DIR", Path.home() / ".cache" / "vla")) / "norm_stats"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback / name


def read_arrays(source, config: NormConfig = NormConfig(), progress: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """One pass over ``source`` (images not decoded) -> (states [N, S], actions [N, A], episodes read)."""
    from tqdm import tqdm

    states, actions = [], []
    total = len(source) if config.max_episodes is None else min(len(source), config.max_episodes)
    n_eps = 0
    it = source.iter_episodes(with_images=False)
    for ep in tqdm(it, total=total, desc=f"norm stats {source.name}", unit="ep", disable=not progress):
        states.append(ep["state"])
        actions.append(ep["actions"])
        n_eps += 1
        if config.max_episodes is not None and n_eps >= config.max_episodes:
            break
    if not actions:
        raise ValueError(f"{source.dir}: no episodes to compute normalization stats from")
    return np.concatenate(states), np.concatenate(actions), n_eps


def compute_stats(source, config: NormConfig = NormConfig(), spec: EmbodimentSpec | None = None,
                  progress: bool = True) -> tuple[NormStats, NormStats, int, int]:
    """One pass over ``source`` (images not decoded) -> (state stats, action stats, episodes, steps)."""
    spec = spec or source.spec
    s, a, n_eps = read_arrays(source, config, progress)
    action_stats = NormStats.from_data(a, config.mode, skip_dims=skipped_action_dims(spec, config))
    state_stats = (NormStats.from_data(s, config.mode, skip_dims=config.skip_state_dims) if s.shape[1]
                   else NormStats.identity(0))
    return state_stats, action_stats, n_eps, int(a.shape[0])


def skipped_action_dims(spec: EmbodimentSpec, config: NormConfig) -> list[int]:
    """Action dims left unnormalized: the gripper dims and ``config.skip_action_dims``."""
    return sorted(set(spec.gripper_dims) | set(config.skip_action_dims))


def local_path(path: Path | str) -> Path:
    """``path`` itself when local; for a file beside remote data, its name in the local cache dir."""
    from data_pipelines.rlds import fs

    return _local_cache(fs.name(path)) if fs.is_url(path) else Path(path)


def write_json_atomic(path: Path | str, payload: dict) -> None:
    path = local_path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def get_stats(source, config: NormConfig = NormConfig(), *, recompute: bool = False,
              progress: bool = True) -> StatsResult:
    """Cached stats for ``source`` under ``config`` (computed and saved on the first call)."""
    from data_pipelines.rlds import fs

    path = cache_path(source, config)
    if fs.isfile(path) and not recompute:
        try:
            d = json.loads(fs.read_text(path))
            return StatsResult(state=NormStats.from_dict(d["state"]), action=NormStats.from_dict(d["action"]),
                               path=path, from_cache=True, episodes=d.get("episodes", 0), steps=d.get("steps", 0))
        except (ValueError, KeyError) as e:
            log.warning("ignoring unreadable stats cache %s: %s", path, e)
    state, action, n_eps, n_steps = compute_stats(source, config, progress=progress)
    path = local_path(path)
    payload = {"dataset": source.key, "embodiment": source.spec.name, "config": asdict(config), "episodes": n_eps,
               "steps": n_steps, "state": state.to_dict(), "action": action.to_dict()}
    write_json_atomic(path, payload)  # remote data dirs are never written: local_path() maps them to the cache
    return StatsResult(state=state, action=action, path=path, from_cache=False, episodes=n_eps, steps=n_steps)


def spec_with_stats(source, config: NormConfig = NormConfig(), **kw) -> EmbodimentSpec:
    """The source's embodiment with its (cached) norm stats attached."""
    r = get_stats(source, config, **kw)
    return source.spec.with_stats(r.state if r.state.dim else None, r.action)
