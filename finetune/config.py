"""Frozen training configuration (optimizer, schedule, checkpoints, LoRA)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from data_pipelines.augment import BatchAugmentConfig


@dataclass(frozen=True)
class LoraSettings:
    """Per-embodiment adapter: peft LoRA on the backbone LM + full copies of ``full_modules``."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None  # None = the backbone's lora_target_modules
    full_modules: tuple[str, ...] = ("expert",)  # trained fully, stored per embodiment


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32  # per process and micro-step
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float | None = None  # e.g. 0.999; the saved policy then carries the EMA weights
    seed: int = 0
    save_every: int = 500
    keep_last: int = 2
    log_every: int = 10
    mixed_precision: str = "auto"  # auto = bf16 on GPU, fp32 on CPU; or "no" / "bf16"
    num_workers: int = 0  # data-loader workers (exact resume needs the same number)
    tensorboard: bool = True
    freeze: tuple[str, ...] = ()  # parameter-name prefixes to freeze, e.g. ("backbone.image_encoder",)
    lora: LoraSettings | None = None  # None = full fine-tuning
    val_every: int = 0  # steps between validation-hook calls (0 = never)
    progress: bool = True
    max_seconds: float | None = None  # stop early (and save) after this much wall time
    # with max_seconds: after 20 timed steps, shrink/grow ``steps`` to fill it (a rerun of a finished run: once more)
    fit_steps_to_time: bool = False
    # train-only image augmentation of each batch (data_pipelines.augment; None = off); never at validation/inference
    augment: BatchAugmentConfig | None = None
    # MB of frozen image-encoder features memoized per frame (timm encoders with frozen layers; 0 = off): a frozen
    # pretrained trunk then costs about nothing after the first epoch; only pays without per-sample image augmentation
    feature_cache_mb: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "save_every", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be auto|no|bf16|fp16; got {self.mixed_precision!r}")
        if self.feature_cache_mb < 0:
            raise ValueError(f"TrainConfig.feature_cache_mb must be >= 0; got {self.feature_cache_mb}")
        if self.augment is not None and not isinstance(self.augment, BatchAugmentConfig):
            raise ValueError(f"TrainConfig.augment must be a BatchAugmentConfig or None; got {type(self.augment)}")

    def replace(self, **kw: Any) -> TrainConfig:
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

