"""Real-time chunking (RTC, Black et al. 2025, "Real-Time Execution of Action Chunking Flow Policies").

While the policy thinks, the robot keeps executing the previous chunk.  A request then carries the
previous chunk's not-yet-executed actions ``prev_actions`` float[k, A] (row ``i`` is the action planned
for the observation's tick + ``i``, robot units) and the inference delay ``delay_steps`` = d control
ticks: rows ``0..d-1`` will execute before the new chunk arrives (they are *committed*), rows
``d..k-1`` are the old plan the new chunk should agree with where it can.

The flow sampler (:meth:`vla.model.heads.FlowMatchingHead.sample_guided`) inpaints the new chunk with
the paper's pseudo-inverse (PiGDM) guidance toward ``prev_actions`` under the soft mask below; the
returned chunk's first ``d`` rows are then set to the committed actions exactly (the robot executes
those anyway, so the answer is what will actually run).  This module is numpy-only (the server's
request checks use it without torch).

Soft mask (paper eq. 5, with ``H - s`` = k, the number of old actions that overlap the new chunk)::

    W_i = 1                                  i < d          (committed)
    W_i = c_i (e^{c_i} - 1) / (e - 1)        d <= i < k     c_i = (k - i) / (k - d + 1), decays to ~0
    W_i = 0                                  i >= k         (nothing to agree with)

Guidance weight clip ``beta`` = 5 (the paper's value).  No prefix (k = 0) means all-zero weights and
the plain sampler, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vla.types import InvalidObservationError

DEFAULT_GUIDANCE_CLIP = 5.0  # beta in the paper


@dataclass(frozen=True)
class ActionPrefix:
    """A validated RTC prefix for one observation: ``actions`` float32[k, A] (robot units), ``delay`` d <= k."""

    actions: np.ndarray
    delay: int

    @property
    def empty(self) -> bool:
        return len(self.actions) == 0


def soft_mask(horizon: int, k: int, d: int) -> np.ndarray:
    """float32[horizon]: the paper's exponentially decaying guidance weights (module docstring)."""
    if not 0 <= d <= k <= horizon:
        raise ValueError(f"soft_mask: need 0 <= delay {d} <= prefix length {k} <= horizon {horizon}")
    w = np.zeros(horizon, np.float64)
    w[:d] = 1.0
    i = np.arange(d, k, dtype=np.float64)
    c = (k - i) / (k - d + 1)
    w[d:k] = c * np.expm1(c) / (math.e - 1)
    return w.astype(np.float32)


def check_prefix(prev_actions, delay_steps, action_dim: int, horizon: int,
                 index: int | None = None) -> ActionPrefix | None:
    """Validate one request's ``prev_actions`` / ``delay_steps`` (robot units); None when neither is given.

    Raises :class:`InvalidObservationError` naming ``prev_actions`` or ``delay_steps`` (the server answers
    422): wrong rank / action dim, non-finite values, more rows than the horizon, a negative delay, a
    delay longer than the horizon or than the prefix, a delay without a prefix.
    """
    if prev_actions is None:
        if delay_steps is not None and _as_delay(delay_steps, horizon, index) > 0:
            raise InvalidObservationError("delay_steps", "0 unless prev_actions is sent (the committed actions)",
                                          f"{delay_steps} without prev_actions", index)
        return None
    arr = np.asarray(prev_actions)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidObservationError("prev_actions", f"float[k, {action_dim}]", f"dtype {arr.dtype}", index)
    if arr.ndim != 2 or arr.shape[1] != action_dim:
        raise InvalidObservationError("prev_actions", f"shape [k, {action_dim}] (k <= horizon {horizon})",
                                      f"shape {list(arr.shape)}", index)
    if arr.shape[0] > horizon:
        raise InvalidObservationError("prev_actions", f"at most {horizon} rows (the model horizon)",
                                      f"{arr.shape[0]} rows", index)
    if not np.all(np.isfinite(arr)):
        raise InvalidObservationError("prev_actions", "finite values", "NaN or inf", index)
    d = 0 if delay_steps is None else _as_delay(delay_steps, horizon, index)
    if d > arr.shape[0]:
        raise InvalidObservationError("delay_steps", f"<= the {arr.shape[0]} rows of prev_actions", str(d), index)
    return ActionPrefix(arr.astype(np.float32), d)


def _as_delay(delay_steps, horizon: int, index: int | None) -> int:
    if isinstance(delay_steps, bool) or not isinstance(delay_steps, (int, np.integer)):
        raise InvalidObservationError("delay_steps", "an int", type(delay_steps).__name__, index)
    d = int(delay_steps)
    if d < 0:
        raise InvalidObservationError("delay_steps", ">= 0", str(d), index)
    if d > horizon:
        raise InvalidObservationError("delay_steps", f"<= the model horizon {horizon}", str(d), index)
    return d


def per_observation_prefixes(prev_actions, delay_steps, n: int) -> list:
    """``predict``'s ``prev_actions`` / ``delay_steps`` as one (actions, delay) pair per observation."""
    if prev_actions is None and delay_steps is None:
        return [(None, None)] * n
    prevs = list(prev_actions) if prev_actions is not None else [None] * n
    if len(prevs) != n:
        raise InvalidObservationError("prev_actions", f"one entry (or None) per observation ({n})",
                                      f"{len(prevs)} entries")
    if delay_steps is None or isinstance(delay_steps, (int, np.integer)):  # one delay for the prefixed ones
        delays = [None if p is None else delay_steps for p in prevs]
    else:
        delays = list(delay_steps)
        if len(delays) != n:
            raise InvalidObservationError("delay_steps", f"an int or one per observation ({n})",
                                          f"{len(delays)} entries")
    return list(zip(prevs, delays))
