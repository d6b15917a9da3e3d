"""Dynamic batching: concurrent requests are stacked into one ``Policy.predict`` call.

A single worker thread owns the policy (models are not assumed thread-safe).  Requests wait in an
asyncio queue; the collector takes the first one plus everything already queued, then keeps waiting
until ``max_batch`` requests or ``max_wait_ms`` have passed, groups them by embodiment and runs one
``predict`` per group with the per-request seeds as a list, so each result equals what that request
alone would get.  Requests carrying a real-time-chunking prefix (``vla.model.rtc.ActionPrefix``) share
the batch with those that do not: ``prev_actions`` / ``delay_steps`` go to ``predict`` as per-request
lists (None where a request has none), and are left out entirely when no request of the group has one.

Adaptive fill (``adaptive=True``): the collector also stops waiting once it holds as many requests
as the most that were in the server at once (queued or being predicted) during the last ``history``
windows.  Closed-loop robot clients come back at the pace of the previous answer, so this keeps batches
full under steady load while a lone client never waits ``max_wait_ms`` for company that is not there.
(Counting only past batch sizes would lock 8 clients into two alternating batches of 4: the half that
queued during a predict is dispatched at once, and the other half then queues during its predict.)
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla.types import InvalidObservationError, Policy

log = logging.getLogger("serve.batching")


class ServerBusy(ConnectionError):
    """The batcher is shutting down or its queue is full (answer 503; a user-facing error, not a bug)."""


@dataclass(frozen=True)
class Result:
    actions: np.ndarray
    embodiment: str
    seed: int
    queue_ms: float  # waiting for a batch slot
    model_ms: float  # the predict call that served this request (shared by its batch)
    batch_size: int  # requests of this embodiment in that predict call
    window_size: int  # requests collected in the same batching window (all embodiments)


@dataclass
class _Item:
    observation: dict[str, Any]
    embodiment: str
    seed: int
    future: asyncio.Future
    prefix: Any = None  # vla.model.rtc.ActionPrefix or None
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Collects requests into batches of at most ``max_batch``, waiting at most ``max_wait_ms``."""

    def __init__(
        self,
        policy: Policy,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        adaptive: bool = True,
        history: int = 16,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.policy = policy
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.adaptive = adaptive
        self._recent: collections.deque[int] = collections.deque(maxlen=history)  # peak load per window
        self._in_system = 0  # submitted, not yet answered
        self._peak = 0  # most requests in the server at once since the last window started
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
        self._closing = False
        self.batches_run = 0  # predict calls
        self.windows_run = 0  # collection windows (one predict per embodiment in each)
        self.requests_served = 0
        self.batch_hist: dict[int, int] = {}

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="dynamic-batcher")

    async def submit(self, observation: dict[str, Any], embodiment: str, seed: int, prefix: Any = None) -> Result:
        if self._queue is None or self._closing:
            raise ServerBusy("server is shutting down")
        if self._queue.qsize() >= self.max_queue:
            raise ServerBusy(f"request queue full ({self.max_queue} waiting)")
        fut = asyncio.get_running_loop().create_future()
        self._in_system += 1
        self._peak = max(self._peak, self._in_system)
        fut.add_done_callback(self._answered)
        await self._queue.put(_Item(observation=observation, embodiment=embodiment, seed=seed, future=fut,
                                     prefix=prefix))
        return await fut

    def _answered(self, _fut: asyncio.Future) -> None:
        self._in_system -= 1

    async def close(self) -> None:
        """Stop taking requests, finish the queued ones, stop the worker."""
        self._closing = True
        if self._queue is not None and self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def _collect(self) -> list[_Item]:
        assert self._queue is not None
        items = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        target = self.max_batch
        if self.adaptive and self._recent:
            target = min(self.max_batch, max(self._recent))
        while len(items) < self.max_batch:
            try:
                items.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            if len(items) >= target:
                break
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            if self._peak:  # the load seen since the last window: what this window may wait for
                self._recent.append(self._peak)
            self._peak = self._in_system
            items = await self._collect()
            self.windows_run += 1
            try:
                groups: dict[str, list[_Item]] = {}
                for it in items:
                    groups.setdefault(it.embodiment, []).append(it)
                log.debug("window of %d: %s", len(items), {e: len(g) for e, g in groups.items()})
                for emb, group in groups.items():
                    await self._serve_group(loop, emb, group, len(items))
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _serve_group(self, loop: asyncio.AbstractEventLoop, emb: str, group: list[_Item], window: int) -> None:
        live = [it for it in group if not it.future.done()]  # skip requests whose client went away
        if not live:
            return
        start = time.perf_counter()
        try:
            chunks = await loop.run_in_executor(
                self._executor, self._predict, [it.observation for it in live], emb, [it.seed for it in live],
                [it.prefix for it in live],
            )
        except InvalidObservationError as e:
            if len(live) > 1:  # isolate the bad request so the others still get served
                for it in live:
                    await self._serve_group(loop, emb, [it], window)
                return
            _set_exc(live[0].future, e)
            return
        except Exception as e:  # model failure: every request of this batch gets it (-> 500)
            log.exception("predict failed for a batch of %d (%s)", len(live), emb)
            for it in live:
                _set_exc(it.future, e)
            return
        model_ms = (time.perf_counter() - start) * 1000.0
        self.batches_run += 1
        self.requests_served += len(live)
        self.batch_hist[len(live)] = self.batch_hist.get(len(live), 0) + 1
        for it, chunk in zip(live, chunks):
            if not it.future.done():
                it.future.set_result(
                    Result(
                        actions=np.asarray(chunk, np.float32),
                        embodiment=emb,
                        seed=it.seed,
                        queue_ms=(start - it.enqueued) * 1000.0,
                        model_ms=model_ms,
                        batch_size=len(live),
                        window_size=window,
                    )
                )

    def _predict(self, observations: list[dict], embodiment: str, seeds: list[int],
                 prefixes: list | None = None) -> list[np.ndarray]:
        rtc = {}
        if prefixes and any(p is not None for p in prefixes):
            rtc = {"prev_actions": [None if p is None else p.actions for p in prefixes],
                   "delay_steps": [None if p is None else p.delay for p in prefixes]}
        chunks = self.policy.predict(observations, embodiment=embodiment, seed=seeds, **rtc)
        if len(chunks) != len(observations):
            raise RuntimeError(f"policy returned {len(chunks)} chunks for {len(observations)} observations")
        return chunks


def _set_exc(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
