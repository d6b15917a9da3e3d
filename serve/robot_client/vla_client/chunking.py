"""Action-chunk execution: the one home of "execute the chunk, query only when it runs out".

Used by robot controllers (``examples/robot_client_loop.py``) and by sim-eval rollouts
(``sim_eval/rollout.py``), over any object with the ``vla.types.Policy`` shape (``metadata``,
``predict(observations, embodiment=, seed=)``): a local ``VLAPolicy``, a ``RemotePolicy``, an expert.

* ``ChunkBroker``: one action per control tick; queries the policy only when the executed part of
  the chunk (``execute_horizon`` ticks) runs out.  ``needs_observation`` says whether the next
  ``act`` will query, so a caller can render cameras only then.
* ``RealTimeChunkBroker`` (``vla_client.realtime``): latency-aware execution, modes naive / blend /
  rtc (real-time chunking: the server inpaints the new chunk to agree with the committed actions), with
  a simulated fixed delay (sim eval) or the measured round-trip latency (robot loops).
* ``BlendingChunkBroker``: starts the next query ``prefetch_steps`` before the chunk ends (in a
  background thread, so the control loop keeps running), then blends the overlap between the old
  chunk's remaining predictions and the new chunk (aligned to the tick its observation was taken
  at) with a linear ramp from old to new.

``seed``: ``None`` (the policy draws), an int (the same for every query) or a callable
``seed(tick) -> int`` (e.g. ``lambda t: episode_seed * 100_003 + t`` for reproducible rollouts).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import numpy as np

Seed = int | Callable[[int], int] | None


def execute_horizon_of(policy: Any, embodiment: str | None, execute_horizon: int | None = None) -> int:
    """``execute_horizon`` if given, else the embodiment's, capped at the model's horizon."""
    if execute_horizon is not None:
        if execute_horizon < 1:
            raise ValueError(f"execute_horizon must be >= 1, got {execute_horizon}")
        return execute_horizon
    meta = policy.metadata
    spec = meta.embodiments[embodiment or meta.default_embodiment]
    return max(1, min(spec.execute_horizon, meta.action_horizon or spec.execute_horizon))


def check_chunk(chunk: Any, action_dim: int | None = None) -> np.ndarray:
    """The policy's answer as float32[H, A]; a ValueError naming the shape otherwise."""
    arr = np.asarray(chunk, np.float32)
    if arr.ndim != 2 or len(arr) == 0 or (action_dim is not None and arr.shape[1] != action_dim):
        raise ValueError(f"policy returned a chunk of shape {list(arr.shape)}, expected [H, {action_dim or 'A'}]")
    return arr


def blend_overlap(old: np.ndarray, new: np.ndarray, blend_steps: int | None = None) -> np.ndarray:
    """``new`` with its first rows (where ``old`` still has a plan, at most ``blend_steps``) ramped linearly
    from ``old``'s values to its own: row i of an overlap of n gets weight (i + 1) / (n + 1) on ``new``."""
    overlap = min(len(old), len(new), blend_steps if blend_steps is not None else len(new))
    if overlap <= 0:
        return new
    w = (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1))[:, None]
    new = new.copy()
    new[:overlap] = (1 - w) * old[:overlap] + w * new[:overlap]
    return new


class _Broker:
    """What both brokers share: the policy, routing, seeds, counters."""

    def __init__(
        self, policy: Any, execute_horizon: int | None, embodiment: str | None, seed: Seed, action_dim: int | None
    ):
        self.policy = policy
        self.embodiment = embodiment
        self.seed = seed
        self.action_dim = action_dim
        self.execute_horizon = execute_horizon_of(policy, embodiment, execute_horizon)
        self.queries = 0

    def _seed_at(self, tick: int) -> int | None:
        return self.seed(tick) if callable(self.seed) else self.seed

    def _query(self, obs: dict, tick: int) -> np.ndarray:
        chunk = self.policy.predict([obs], embodiment=self.embodiment, seed=self._seed_at(tick))[0]
        return check_chunk(chunk, self.action_dim)


class ChunkBroker(_Broker):
    """``act(obs) -> float32[A]`` per control tick; queries only when the executed chunk runs out."""

    def __init__(
        self,
        policy: Any,
        *,
        execute_horizon: int | None = None,
        embodiment: str | None = None,
        seed: Seed = None,
        action_dim: int | None = None,
    ):
        super().__init__(policy, execute_horizon, embodiment, seed, action_dim)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: the next ``act`` queries."""
        self._chunk: np.ndarray | None = None
        self._i = 0
        self.t = 0  # control ticks executed since reset
        self.switches: list[tuple[int, int]] = []  # (query tick, tick its chunk took over): equal here

    @property
    def needs_observation(self) -> bool:
        """True when the next ``act`` queries the policy (the only time it looks at ``obs``)."""
        return self._chunk is None or self._i >= min(self.execute_horizon, len(self._chunk))

    def act(self, obs: dict) -> np.ndarray:
        if self.needs_observation:
            self._chunk = self._query(obs, self.t)
            self._i = 0
            self.queries += 1
            self.switches.append((self.t, self.t))
        action = self._chunk[self._i]
        self._i += 1
        self.t += 1
        return action


class BlendingChunkBroker(_Broker):
    """Asynchronous chunking: prefetch the next chunk, then blend it into the current one.

    Ticks count control steps.  A query started at tick ``tq`` returns a chunk whose row ``i`` is
    meant for tick ``tq + i``; when it arrives at tick ``ta`` its rows from ``ta - tq`` on replace
    the schedule, the first ``blend_steps`` of them (where the old chunk still has predictions) ramp
    linearly from the old values to the new ones.  If the executable part of the old chunk runs out
    before the new one arrives, ``act`` waits for it (counted in ``stalls``).
    """

    def __init__(
        self,
        policy: Any,
        *,
        execute_horizon: int | None = None,
        prefetch_steps: int = 3,
        blend_steps: int | None = None,
        embodiment: str | None = None,
        seed: Seed = None,
        action_dim: int | None = None,
    ):
        super().__init__(policy, execute_horizon, embodiment, seed, action_dim)
        if not 0 <= prefetch_steps < self.execute_horizon:
            raise ValueError(
                f"prefetch_steps must be in [0, execute_horizon={self.execute_horizon}), got {prefetch_steps}"
            )
        self.prefetch_steps = prefetch_steps
        self.blend_steps = blend_steps
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-prefetch")
        self.stalls = 0
        self.reset()

    def reset(self) -> None:
        """Start a new episode (a prefetch still in flight is dropped)."""
        self.t = 0  # current control tick
        self._sched: np.ndarray | None = None  # actions for ticks [_t0, _t0 + len)
        self._t0 = 0
        self._end = 0  # first tick not covered by an executable chunk
        self._pending: tuple[int, concurrent.futures.Future] | None = None

    @property
    def needs_observation(self) -> bool:
        """True when the next ``act`` may start a query (synchronous or prefetch).

        Exact except while a late prefetch is still running at the end of the chunk (then True).
        """
        end = self._end
        if self._pending is not None:
            tq, fut = self._pending
            if not fut.done():
                return self.t >= end  # act will wait for it, then may have to query again
            if fut.exception() is not None:
                return True
            end = tq + min(self.execute_horizon, len(fut.result()))
        elif self._sched is None:
            return True
        return self.t >= end or end - self.t <= self.prefetch_steps

    def _merge(self, tq: int, chunk: np.ndarray) -> None:
        t = self.t
        new = chunk[t - tq :]
        if self._sched is not None:
            new = blend_overlap(self._sched[t - self._t0 :], new, self.blend_steps)
        self._sched, self._t0 = new, t
        self._end = tq + min(self.execute_horizon, len(chunk))

    def act(self, obs: dict) -> np.ndarray:
        t = self.t
        if self._pending is not None and (self._pending[1].done() or t >= self._end):
            tq, fut = self._pending
            if not fut.done():
                self.stalls += 1
            self._pending = None
            self._merge(tq, fut.result())
        if self._sched is None or t >= self._end:  # nothing executable: query synchronously
            self.queries += 1
            self._merge(t, self._query(obs, t))
        if self._pending is None and self._end - t <= self.prefetch_steps:
            self.queries += 1
            self._pending = (t, self._pool.submit(self._query, obs, t))
        action = self._sched[t - self._t0]
        self.t += 1
        return action

    def close(self) -> None:
        self._pool.shutdown(wait=True)
