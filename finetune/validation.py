"""Periodic in-sim validation during training: success rate on a few seeded episodes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sim_eval.seeds import VALIDATION_SEED


def sim_validation_hook(task: str = "Lift", episodes: int = 4, workers: int = 2, image_size: int = 84,
                        seed: int = VALIDATION_SEED) -> Callable[[Any, int], dict[str, float]]:
    """A ``val_hook`` for :func:`finetune.trainer.train`: runs the live policy in sim_eval workers.

    Episodes that raised are counted in ``{task}_errors`` and left out of the success rate (as in
    ``vla eval``'s report); the rate is NaN when none ran."""

    def hook(policy, step: int) -> dict[str, float]:
        from sim_eval.evaluate import evaluate

        report = evaluate(policy, [task], (), episodes, workers=workers, out_dir=None, seed=seed,
                          image_size=image_size, videos_per_condition=0, progress=False)
        ran = [e for e in report["episodes"] if not e.get("error")]
        rate = sum(e["success"] for e in ran) / len(ran) if ran else math.nan
        return {f"{task}_success": rate, f"{task}_errors": float(len(report["episodes"]) - len(ran))}

    return hook
