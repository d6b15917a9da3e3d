"""Latency-aware chunk execution: the robot keeps moving while the policy thinks.

Ticks count control steps.  A chunk becomes active at its *switch tick* and executes ``execute_horizon``
actions.  ``d`` ticks before that executable part ends, the broker takes the observation and starts the
next query (query tick ``tq``); the robot keeps executing the current chunk meanwhile.  Row ``i`` of the
answer is meant for tick ``tq + i``; at the switch tick ``tq + d`` the schedule takes it over:

* ``naive``: rows ``d..`` as predicted (jumps where the new plan disagrees with the old one);
* ``blend``: the same rows ramped linearly from the old plan (:func:`vla_client.chunking.blend_overlap`,
  ``BlendingChunkBroker``'s rule);
* ``rtc``: real-time chunking (Black et al. 2025): the request carries the old plan from ``tq`` on
  (``prev_actions``) and ``delay_steps`` = d, so the policy inpaints a chunk whose first d rows are the
  committed ones and whose next rows agree with the old plan where it can.

The delay ``d``:

* ``delay_steps=N`` (simulated, for sim eval): the query runs synchronously at ``tq`` and its answer is
  held back until tick ``tq + N``: deterministic, exactly N old actions execute before every switch;
* ``delay_steps=None`` (measured, for a robot's fixed-rate loop): the query runs in a background thread,
  ``d`` = ceil(the largest of the last ``latency_window`` round trips x ``control_hz``) + ``margin_steps``
  (at most ``execute_horizon``), and the switch happens at the first tick the answer is there.

The episode's first query has nothing to overlap: the robot waits for it (counted in ``stalls`` when
measured) and executes from row 0.  ``switches`` records (query tick, switch tick) per chunk.
"""

from __future__ import annotations

import concurrent.futures
import math
import time
from collections import deque
from typing import Any

import numpy as np

from .chunking import Seed, _Broker, blend_overlap

MODES = ("naive", "blend", "rtc")


class RealTimeChunkBroker(_Broker):
    """``act(obs) -> float32[A]`` per control tick with a simulated or measured inference delay."""

    def __init__(
        self,
        policy: Any,
        *,
        mode: str = "rtc",
        delay_steps: int | None = None,
        control_hz: float | None = None,
        execute_horizon: int | None = None,
        blend_steps: int | None = None,
        embodiment: str | None = None,
        seed: Seed = None,
        action_dim: int | None = None,
        latency_window: int = 8,
        margin_steps: int = 0,
    ):
        super().__init__(policy, execute_horizon, embodiment, seed, action_dim)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if delay_steps is not None and not 0 <= delay_steps <= self.execute_horizon:
            raise ValueError(f"delay_steps must be in [0, execute_horizon={self.execute_horizon}], got {delay_steps}")
        meta = policy.metadata
        spec = meta.embodiments[embodiment or meta.default_embodiment]
        self.mode, self.delay_steps, self.blend_steps = mode, delay_steps, blend_steps
        self.control_hz = float(control_hz or spec.control_hz)
        self.margin_steps = margin_steps
        self.latencies_s: deque[float] = deque(maxlen=latency_window)
        self._pool = None if delay_steps is not None else concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rtc-query")
        self.stalls = 0
        self.reset()

    def reset(self) -> None:
        """Start a new episode (an answer still in flight is dropped)."""
        self.t = 0
        self._sched: np.ndarray | None = None  # actions for ticks [_t0, _t0 + len)
        self._t0 = 0
        self._end = 0  # first tick not covered by the active chunk's executable part
        self._pending: tuple[int, int, Any] | None = None  # (query tick, delay sent, answer or future)
        self.switches: list[tuple[int, int]] = []

    @property
    def delay(self) -> int:
        """The delay ``d`` the next query plans for (ticks)."""
        if self.delay_steps is not None:
            return self.delay_steps
        if not self.latencies_s:
            return 0
        d = math.ceil(max(self.latencies_s) * self.control_hz - 1e-9) + self.margin_steps
        return max(0, min(self.execute_horizon, d))

    @property
    def needs_observation(self) -> bool:
        """True when the next ``act`` starts a query (the only time it looks at ``obs``).

        Exact with a simulated delay; with a measured one an answer or a latency may land in between."""
        t = self.t
        if self._pending is not None:
            if t < self._end and not self._arrived(t):
                return False  # still executing the old chunk
            return self.execute_horizon <= self.delay  # it switches now; a new query only if d == horizon
        return self._sched is None or self._end - t <= self.delay

    def act(self, obs: dict) -> np.ndarray:
        t = self.t
        if self._pending is not None and self._arrived(t):
            self._switch()
        if self._sched is None or t >= self._end:  # nothing executable left
            if self._pending is None:
                self._start(obs, t, 0)
            if not self._arrived(t):
                self.stalls += 1  # the robot waits for the answer
            self._switch()
        if self._pending is None and self._end - t <= self.delay:
            self._start(obs, t, min(self.delay, self._end - t))
        action = self._sched[t - self._t0]
        self.t += 1
        return action

    def _arrived(self, t: int) -> bool:
        tq, d, answer = self._pending
        if isinstance(answer, concurrent.futures.Future):
            return answer.done()
        return t >= tq + d

    def _start(self, obs: dict, t: int, d: int) -> None:
        """Query at tick ``t`` planning for a delay of ``d`` ticks (rtc: with the old plan as the prefix)."""
        prefix = None
        if self.mode == "rtc" and self._sched is not None:
            prefix = self._sched[t - self._t0 :]
            d = min(d, len(prefix))
        self.queries += 1
        if self._pool is None:
            self._pending = (t, d, self._timed_query(obs, t, prefix, d))
        else:
            self._pending = (t, d, self._pool.submit(self._timed_query, obs, t, prefix, d))

    def _timed_query(self, obs: dict, t: int, prefix: np.ndarray | None, d: int) -> np.ndarray:
        from .chunking import check_chunk

        t0 = time.perf_counter()
        kw = {} if prefix is None else {"prev_actions": [prefix], "delay_steps": d}
        chunk = self.policy.predict([obs], embodiment=self.embodiment, seed=self._seed_at(t), **kw)[0]
        self.latencies_s.append(time.perf_counter() - t0)
        return check_chunk(chunk, self.action_dim)

    def _switch(self) -> None:
        """The pending answer takes over at the current tick (waiting for it if it is still computing)."""
        tq, _, answer = self._pending
        self._pending = None
        chunk = answer.result() if isinstance(answer, concurrent.futures.Future) else answer
        t = self.t
        new = chunk[min(t - tq, len(chunk) - 1):]
        if self.mode == "blend" and self._sched is not None:
            new = blend_overlap(self._sched[t - self._t0 :], new, self.blend_steps)
        self._sched, self._t0 = new, t
        self._end = t + min(self.execute_horizon, len(new))
        self.switches.append((tq, t))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
