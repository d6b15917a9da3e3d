"""Scripted-expert success rates over seeded episodes (robosuite tasks; Meta-World MT10 with --mt10).

    python benchmarks/expert_success.py --episodes 50 --workers 2 [--tasks Lift Door] [--mt10]

Prints one line per task: successes / episodes, rate, Wilson 95 % CI, mean steps, and the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("MUJOCO_GL", "egl")

TARGETS = {"Lift": 0.95, "Door": 0.95, "Stack": 0.85, "PickPlaceCan": 0.85}


def main() -> int:
    from sim_eval.report import wilson
    from sim_eval.rollout import Job, PolicySource, RolloutConfig, run_jobs

    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--mt10", action="store_true", help="also run the Meta-World MT10 experts")
    args = ap.parse_args()
    tasks = list(TARGETS if args.tasks is None else args.tasks)
    if args.mt10:
        from sim_eval.metaworld_env import METAWORLD_TASKS

        tasks += list(METAWORLD_TASKS)
    rows = []
    for task in tasks:
        t0 = time.perf_counter()
        jobs = [Job(task, seed) for seed in range(args.episodes)]
        res = list(run_jobs(jobs, PolicySource("expert"), RolloutConfig(), workers=args.workers, desc=task))
        errors = [r for r in res if r.error]
        for r in errors[:3]:
            print(f"  {task} seed {r.seed}: {r.error.splitlines()[0]}")
        k = sum(r.success for r in res)
        lo, hi = wilson(k, len(res))
        steps = sum(r.steps for r in res) / max(len(res), 1)
        rows.append((task, k, len(res), lo, hi, steps, time.perf_counter() - t0))
        target = TARGETS.get(task, 0.9)
        print(f"{task:>28}: {k:3d}/{len(res)} = {k / len(res):6.1%}  CI95 [{lo:.2f}, {hi:.2f}]  "
              f"mean steps {steps:5.1f}  target >= {target:.0%}  {'OK' if k / len(res) >= target else 'BELOW'}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    mw = [r for r in rows if r[0] not in TARGETS]
    if mw:
        avg = sum(r[1] / r[2] for r in mw) / len(mw)
        print(f"{'Meta-World MT10 average':>28}: {avg:6.1%}  target >= 90%  {'OK' if avg >= 0.9 else 'BELOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
