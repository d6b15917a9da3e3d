"""Norm stats shared by several datasets of one embodiment in a mixture (two ``vla collect`` runs, Lift + Door).

The pooled stats describe what training sees: the mixture draws dataset ``i`` with probability ``w_i`` (its
normalized weight within the group) and then one of its steps uniformly, i.e. a distribution that puts mass
``w_i / n_i`` on each step of dataset ``i``. Under that distribution:

* ``mean`` / ``std`` are exact weighted moments of the per-dataset (cached) stats:
  ``mean = sum w_i m_i``, ``std^2 = sum w_i (s_i^2 + m_i^2) - mean^2``;
* ``q01`` / ``q99`` are recomputed over the pooled steps (one pass, images not decoded) as the inverse of the
  weighted step CDF: the smallest value ``x`` with ``P(X <= x) >= q`` (numpy's ``inverted_cdf``; with weights in
  proportion to the dataset sizes this is ``np.quantile(concatenated, q, method="inverted_cdf")``).

The result is cached like single-dataset stats, keyed by the member datasets, their weights and the config.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from data_pipelines.stats import (
    STATS_VERSION,
    NormConfig,
    cache_path,
    get_stats,
    read_arrays,
    write_json_atomic,
)
from vla.normalization import NormStats
from vla.types import EmbodimentSpec

_SPEC_FIELDS_IGNORED = ("state_stats", "action_stats", "description")


def spec_differences(a: EmbodimentSpec, b: EmbodimentSpec) -> list[str]:
    """The spec fields (stats aside) where ``a`` and ``b`` differ, as ``"field a vs b"``."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k} {da[k]!r} vs {db[k]!r}" for k in da if k not in _SPEC_FIELDS_IGNORED and da[k] != db[k]]


def weighted_quantiles(parts: Sequence[np.ndarray], weights: Sequence[float], qs: Sequence[float]) -> np.ndarray:
    """Quantiles ``[len(qs), D]`` of the mixture of ``parts`` (each ``[N_i, D]``) drawn with ``weights``: the
    smallest value whose weighted step CDF reaches ``q``."""
    w = np.asarray(weights, np.float64) / float(np.sum(weights))
    x = np.concatenate([np.asarray(p, np.float64) for p in parts])
    mass = np.concatenate([np.full(len(p), wi / len(p)) for p, wi in zip(parts, w)])
    out = np.empty((len(qs), x.shape[1]))
    for d in range(x.shape[1]):
        order = np.argsort(x[:, d], kind="stable")
        cdf = np.cumsum(mass[order])
        idx = np.searchsorted(cdf, np.asarray(qs, np.float64) - 1e-9, side="left")
        out[:, d] = x[order, d][np.minimum(idx, len(x) - 1)]
    return out


def pool_moments(stats: Sequence[NormStats], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and std of the weighted mixture from per-dataset mean/std."""
    w = np.asarray(weights, np.float64)[:, None] / float(np.sum(weights))
    m = np.array([s.mean for s in stats], np.float64)
    sd = np.array([s.std for s in stats], np.float64)
    mean = (w * m).sum(0)
    second = (w * (sd**2 + m**2)).sum(0)
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0))


def _pool(stats: Sequence[NormStats], parts: Sequence[np.ndarray], weights: Sequence[float]) -> NormStats:
    if stats[0].dim == 0:
        return NormStats.identity(0)
    mean, std = pool_moments(stats, weights)
    q01, q99 = weighted_quantiles(parts, weights, (0.01, 0.99))
    return NormStats(mean=tuple(map(float, mean)), std=tuple(map(float, std)), q01=tuple(map(float, q01)),
                     q99=tuple(map(float, q99)), mode=stats[0].mode, count=sum(s.count for s in stats))


def pooled_stats(sources: Sequence, weights: Sequence[float], config: NormConfig | None = None,
                 progress: bool = True) -> tuple[NormStats, NormStats]:
    """(state, action) stats of same-embodiment ``sources`` mixed with ``weights`` (cached; see module doc)."""
    config = config or NormConfig()
    members = sorted((s.key, s.fingerprint(), float(w)) for s, w in zip(sources, weights))
    key = json.dumps({"v": STATS_VERSION, "members": members, "config": asdict(config)}, sort_keys=True)
    name = f"vla_norm_stats_pooled-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    from data_pipelines.rlds import fs

    path = cache_path(sources[0], config, name)
    if fs.isfile(path):
        try:
            d = json.loads(fs.read_text(path))
            return NormStats.from_dict(d["state"]), NormStats.from_dict(d["action"])
        except (ValueError, KeyError):
            pass  # unreadable cache: recompute
    singles = [get_stats(s, config, progress=progress) for s in sources]
    arrays = [read_arrays(s, config, progress) for s in sources]
    state = _pool([r.state for r in singles], [a[0] for a in arrays], weights)
    action = _pool([r.action for r in singles], [a[1] for a in arrays], weights)
    write_json_atomic(path, {"members": members, "config": asdict(config), "state": state.to_dict(),
                             "action": action.to_dict()})
    return state, action


def pool_embodiments(specs: Sequence[EmbodimentSpec], sources: Sequence, weights: Sequence[float],
                     paths: Sequence[str], config: NormConfig | None = None,
                     progress: bool = True) -> list[EmbodimentSpec]:
    """``specs`` (one per dataset) where datasets sharing an embodiment name carry their pooled stats; a ValueError
    naming the differing fields when two datasets use one name for different specs."""
    out = list(specs)
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(spec.name, []).append(i)
    for name, idx in groups.items():
        if len(idx) < 2:
            continue
        first = idx[0]
        for j in idx[1:]:
            diffs = spec_differences(specs[first], specs[j])
            if diffs:
                raise ValueError(f"{paths[j]}: embodiment name {name!r} is also used by {paths[first]} with a "
                                 f"different spec ({'; '.join(diffs)}); give one a key mapping (--mapping) with "
                                 "another name")
        state, action = pooled_stats([sources[i] for i in idx], [weights[i] for i in idx], config, progress)
        for i in idx:
            out[i] = replace(specs[i], state_stats=state if state.dim else None, action_stats=action)
    return out
