"""Learning-rate schedule: linear warmup, then cosine to ``min_lr_ratio``."""

from __future__ import annotations

import math

from finetune.config import TrainConfig


class WarmupCosine:
    """``step -> lr factor``; ``total`` may change during training (a time budget refits the step count)."""

    def __init__(self, cfg: TrainConfig, total: int | None = None):
        self.warmup = cfg.warmup_steps
        self.floor = cfg.min_lr_ratio
        self.total = cfg.steps if total is None else total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_lambda(cfg: TrainConfig, total: int | None = None) -> WarmupCosine:
    """The schedule of ``cfg`` over ``total`` steps (default ``cfg.steps``)."""
    return WarmupCosine(cfg, total)
