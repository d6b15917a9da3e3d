"""Periodic in-sim validation during training: success rate on a few seeded episodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def sim_validation_hook(task: str = "Lift", episodes: int = 4, workers: int = 2, image_size: int = 84,
                        seed: int = 10_000) -> Callable[[Any, int], dict[str, float]]:
    """A ``val_hook`` for :func:`finetune.trainer.train`: runs the live policy in sim_eval workers."""

    def hook(policy, step: int) -> dict[str, float]:
        from sim_eval.evaluate import evaluate

        report = evaluate(policy, [task], (), episodes, workers=workers, out_dir=None, seed=seed,
                          image_size=image_size, videos_per_condition=0, progress=False)
        ok = sum(e["success"] for e in report["episodes"])
        return {f"{task}_success": ok / max(1, len(report["episodes"]))}

    return hook
