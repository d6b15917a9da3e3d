"""The ``vla demo`` recipe (scripted demos -> embedded policy fine-tune -> sim eval) on several
robosuite tasks, nominal success side by side with wall times.

    python benchmarks/recipe_success.py [--tasks Lift Stack PickPlaceCan] [--train-minutes M] [--episodes 50]
                                        [any other `vla demo` option, e.g. --color-gain 0.4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["Lift", "Stack", "PickPlaceCan"])
    ap.add_argument("--demos", type=int, default=50)
    ap.add_argument("--train-minutes", type=float, default=None, help="default: the demo recipe's budget")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="recipe_success_runs")
    args, extra = ap.parse_known_args()  # anything else (e.g. --color-gain 0.4) goes to `vla demo`
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
    }
    rows = []
    for task in args.tasks:
        out = Path(args.out) / task
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vla.cli",
                "demo",
                "--task",
                task,
                "--out",
                str(out),
                "--demos",
                str(args.demos),
                "--eval-episodes",
                str(args.episodes),
                "--factors",
                "--workers",
                str(args.workers),
                *([] if args.train_minutes is None else ["--train-minutes", str(args.train_minutes)]),
                *extra,
            ],
            env=env,
        )
        summary = out / "demo_summary.json"
        if proc.returncode not in (0, 1) or not summary.exists():
            rows.append((task, None, time.perf_counter() - t, {}))
            continue
        s = json.loads(summary.read_text())
        nominal = next(o for o in s["overall"] if o["condition"] == "nominal")
        rows.append((task, nominal, time.perf_counter() - t, s["timings"]))
    print(f"\n{'task':<14}{'success':>10}{'95% CI':>16}{'n':>5}{'collect':>10}{'train':>8}{'eval':>8}{'total':>8}")
    for task, nominal, secs, tm in rows:
        if nominal is None:
            print(f"{task:<14}{'failed':>10}")
            continue
        ci = f"[{nominal['ci95'][0]:.2f}, {nominal['ci95'][1]:.2f}]"
        print(
            f"{task:<14}{nominal['success_rate']:>10.1%}{ci:>16}{nominal['n']:>5}"
            f"{tm['collect_s'] / 60:>9.1f}m{tm['train_s'] / 60:>7.1f}m{tm['eval_s'] / 60:>7.1f}m{secs / 60:>7.1f}m"
        )


if __name__ == "__main__":
    main()
