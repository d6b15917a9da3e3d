"""Rollout throughput: query-time rendering (chunk 8) vs rendering every step, 1 vs 2 workers.

    python benchmarks/eval_throughput.py [--task Lift] [--episodes 8] [--image-size 96]

The policy is the scripted expert emitting 8-action chunks and flagged as image-using, so the
rollout renders both cameras exactly when a real VLA would be queried. Both modes take the same
actions (rendering does not touch physics), so the only difference is the rendering.
Episodes/min counts the whole wall time, worker start-up included.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> int:
    from sim_eval.rollout import Job, PolicySource, RolloutConfig, run_jobs

    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=96)
    args = ap.parse_args()
    source = PolicySource("expert", chunk=8, expert_uses_images=True)
    jobs = [Job(args.task, s) for s in range(args.episodes)]
    rows = []
    for workers in (1, 2):
        for every in (False, True):
            cfg = RolloutConfig(image_size=args.image_size, render_every_step=every)
            t0 = time.perf_counter()
            res = list(run_jobs(jobs, source, cfg, workers=workers, progress=False))
            wall = time.perf_counter() - t0
            errs = [r.error for r in res if r.error]
            if errs:
                print("error:", errs[0])
                return 1
            n = len(res)
            rows.append(
                {
                    "mode": "render every step" if every else "chunk 8, render at query",
                    "workers": workers,
                    "renders/ep": sum(r.renders for r in res) / n,
                    "steps/ep": sum(r.steps for r in res) / n,
                    "queries/ep": sum(r.queries for r in res) / n,
                    "ep/min": 60 * n / wall,
                    "s/ep (in worker)": sum(r.seconds for r in res) / n,
                    "success": sum(r.success for r in res) / n,
                }
            )
            print(f"  done: {rows[-1]['mode']}, {workers} worker(s): {wall:.1f} s", flush=True)
    print(f"\n{args.task}, {args.episodes} episodes per row, {args.image_size}px, 2 cameras, cpu={os.cpu_count()}")
    hdr = (
        f"{'mode':<26} {'workers':>7} {'renders/ep':>10} {'steps/ep':>8} {'queries/ep':>10} "
        f"{'ep/min':>7} {'s/ep':>6} {'success':>7}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['mode']:<26} {r['workers']:>7} {r['renders/ep']:>10.1f} {r['steps/ep']:>8.1f} "
            f"{r['queries/ep']:>10.1f} "
            f"{r['ep/min']:>7.1f} {r['s/ep (in worker)']:>6.2f} {r['success']:>7.0%}"
        )
    by = {(r["mode"], r["workers"]): r for r in rows}
    q1, e1 = by[("chunk 8, render at query", 1)], by[("render every step", 1)]
    q2 = by[("chunk 8, render at query", 2)]
    print(
        f"\nquery-time vs every-step rendering (1 worker): {e1['renders/ep'] / q1['renders/ep']:.1f}x fewer renders, "
        f"{q1['ep/min'] / e1['ep/min']:.2f}x episodes/min"
    )
    print(f"2 vs 1 workers (query-time rendering): {q2['ep/min'] / q1['ep/min']:.2f}x episodes/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
