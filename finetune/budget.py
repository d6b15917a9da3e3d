"""Wall-time budget of a run: stop after ``max_seconds``, optionally refit the step count to fill it.

Decisions taken from wall time must be the same on every process, or their collectives would stop
matching and hang: each is broadcast from the main process (:func:`agree`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from finetune.config import TrainConfig


def agree(acc, values: list[float]) -> list[float]:
    """The main process's ``values`` on every process."""
    if acc.num_processes == 1:
        return values
    from accelerate.utils import broadcast

    return broadcast(torch.tensor(values, dtype=torch.float64, device=acc.device), from_process=0).tolist()


class TimeBudget:
    """``cfg.max_seconds`` from construction on. With ``cfg.fit_steps_to_time``, the step count is refit at the
    measured rate after 20 steps (timing the last 10), then every 100 steps (a shared machine's speed drifts),
    and the stop allows 5 % slack for the refit's error."""

    def __init__(self, cfg: TrainConfig, acc, start_step: int, say: Callable[[str], None]):
        self.max_seconds = cfg.max_seconds
        self.fit_at = start_step + 20 if cfg.fit_steps_to_time and cfg.max_seconds else None
        self.acc = acc
        self.say = say
        self.t0 = time.perf_counter()
        self._timed_from = self.t0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def refit(self, step: int, now: float) -> int | None:
        """The new total step count (the same on every process) when ``step`` is a refit point, else None."""
        if self.fit_at is None:
            return None
        if step == self.fit_at - 10:
            self._timed_from = now
        if step < self.fit_at or (step - self.fit_at) % 100:
            return None
        per_step = (now - self._timed_from) / (10 if step == self.fit_at else 100)
        self._timed_from = now
        total = max(step + 1, int(step + (self.max_seconds - (now - self.t0)) / per_step))
        total = int(agree(self.acc, [total])[0])
        if step == self.fit_at:
            self.say(f"[finetune] {per_step * 1000:.0f} ms/step measured: training {total} steps to fill "
                     f"{self.max_seconds:.0f} s")
        return total

    def spent(self) -> bool:
        """Whether to stop now (agreed across processes)."""
        if self.max_seconds is None:
            return False
        slack = 1.05 if self.fit_at else 1.0
        return bool(agree(self.acc, [self.elapsed() > self.max_seconds * slack])[0])
