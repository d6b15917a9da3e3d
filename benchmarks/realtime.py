"""Success under inference delay: the `vla demo` recipe's policy with the robot executing while the policy thinks.

    python benchmarks/realtime.py --policy Lift=runs/demo/train/policy [--policy PickPlaceCan=PATH] \\
        [--delays 0 2 4 6] [--modes sync naive blend rtc] [--n 30] [--workers 2] [--out realtime_bench]

For every task x delay (control steps) x execution mode it runs ``n`` seeded episodes (the rollouts of
``vla eval --exec-mode M --delay-steps D``): ``sync`` waits for every chunk (the delay
costs wall time, not behaviour, so it runs once and stands for every delay); ``naive`` switches to the late
chunk as predicted, ``blend`` ramps from the old plan, ``rtc`` sends the committed actions and lets the flow
sampler inpaint (Black et al. 2025). Per cell: success with Wilson 95 % CI, mean action change at chunk
switches (arm dims) and inside chunks (its natural scale), mean end-effector jerk (m/s^3), mean steps to
success.  Prints one table, writes ``OUT/realtime.json`` and ``OUT/realtime.png``; all cells of a task share
one pool of sim worker processes (the checkpoint and env load once per worker); finished cells are kept in
``OUT/cells/`` and reused.
A task given no ``--policy`` is reported as "no checkpoint".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("sync", "naive", "blend", "rtc")
TASKS = ("Lift", "PickPlaceCan")


def run_task(policy: str, task: str, cells: list[tuple[str, int]], n: int, workers: int, seed: int) -> list[dict]:
    """All (mode, delay) cells of one task in one pool of ``workers`` sim processes (each loads the checkpoint and
    builds the env once); the same ``n`` episode seeds in every cell. Returns one summary row per cell."""
    from sim_eval.checks import resolve_eval
    from sim_eval.evaluate import resolve_delay
    from sim_eval.report import summarize
    from sim_eval.rollout import Job, PolicySource, RolloutConfig, run_jobs
    from sim_eval.seeds import episode_seeds

    source = PolicySource.parse(policy)
    plan = resolve_eval(source, [task])
    for mode, delay in cells:
        resolve_delay([task], mode, delay, None, None, source)  # a bad cell fails before any episode
    cfg = RolloutConfig(image_size=plan.image_size, embodiment=plan.embodiment, cameras=plan.cameras)
    jobs = [Job(task, s, f"{mode} d={delay}", exec_mode=mode, delay_steps=delay)
            for mode, delay in cells for s in episode_seeds(seed, n)]
    t0 = time.perf_counter()
    results = list(run_jobs(jobs, source, cfg, workers=workers, desc=f"{task} {len(cells)} cells"))
    seconds = time.perf_counter() - t0
    rows = []
    for row in summarize(results)["rows"]:
        mode, d = row["condition"].split(" d=")
        errors = [r.error.splitlines()[0] for r in results if r.condition == row["condition"] and r.error]
        rows.append({**row, "mode": mode, "delay": int(d), "errors_list": errors[:3],
                     "seconds": seconds * (row["n"] + row["errors"]) / max(1, len(jobs))})
    return rows


def sweep(args) -> list[dict]:
    policies = dict(p.split("=", 1) for p in args.policy)
    cells_dir = Path(args.out) / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks:
        if task not in policies:
            rows += [{"task": task, "mode": m, "delay": d, "missing": True} for d in args.delays for m in args.modes]
            continue
        # sync: the robot waits, so its episodes are the same at every delay: run once (d=0)
        cells = list(dict.fromkeys((m, 0 if m == "sync" else d) for d in args.delays for m in args.modes))
        path_of = {c: cells_dir / f"{task}_{c[0]}_d{c[1]}_n{args.n}_s{args.seed}.json" for c in cells}
        todo = [c for c in cells if not path_of[c].exists()]
        if todo:
            for row in run_task(policies[task], task, todo, args.n, args.workers, args.seed):
                path_of[(row["mode"], row["delay"])].write_text(json.dumps(row, indent=1))
                print(f"  {task} {row['mode']:<5} d={row['delay']}: {_rate(row)}", flush=True)
        done = {c: json.loads(path_of[c].read_text()) for c in cells}
        rows += [{**done[(m, 0 if m == "sync" else d)], "delay": d} for d in args.delays for m in args.modes]
    return rows


def _rate(r: dict) -> str:
    if r.get("missing"):
        return "no checkpoint"
    if r.get("success_rate") is None:
        return f"– (errors {r.get('errors')})"
    lo, hi = r["ci95"]
    return f"{r['success_rate']:.0%} [{lo:.2f},{hi:.2f}] n={r['n']}"


def _num(x, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def table(rows: list[dict], modes) -> list[str]:
    """One line per task x delay: per mode success [CI] n | switch jump | EE jerk | steps to success."""
    head = f"{'task':<13}{'d':>2} " + " ".join(f"| {m:<50}" for m in modes)
    sub = f"{'':<16}" + " ".join(f"| {'success [95% CI] n':<25}{'jump':>6}{'base':>6}{'jerk':>7}{'steps':>6}"
                                 for _ in modes)
    lines = [head, sub]
    for task in dict.fromkeys(r["task"] for r in rows):
        for d in sorted({r["delay"] for r in rows if r["task"] == task}):
            cells = []
            for m in modes:
                r = next(x for x in rows if x["task"] == task and x["delay"] == d and x["mode"] == m)
                if r.get("missing"):
                    cells.append(f"| {'no checkpoint':<50}")
                    continue
                cells.append(f"| {_rate(r):<25}{_num(r.get('mean_discontinuity'), '.3f'):>6}"
                             f"{_num(r.get('mean_step_change'), '.3f'):>6}"
                             f"{_num(r.get('mean_jerk'), '.0f'):>7}{_num(r.get('mean_steps_to_success'), '.0f'):>6}")
            lines.append(f"{task:<13}{d:>2} " + " ".join(cells))
    return lines


def verdict(rows: list[dict], delay: int = 4) -> list[str]:
    """The acceptance goal at ``delay``: rtc keeps >= 95 % of its zero-delay success and has the smallest jump."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        got = {(r["mode"], r["delay"]): r for r in rows if r["task"] == task and not r.get("missing")}
        if ("rtc", delay) not in got or ("rtc", 0) not in got:
            out.append(f"{task}: not measured at delays 0 and {delay}")
            continue
        r0, rd = got[("rtc", 0)]["success_rate"], got[("rtc", delay)]["success_rate"]
        keep = None if not r0 else rd / r0
        jumps = {m: got[(m, delay)].get("mean_discontinuity") for m in ("naive", "blend", "rtc") if (m, delay) in got}
        best = min((j, m) for m, j in jumps.items() if j is not None)[1] if any(jumps.values()) else None
        listed = ", ".join(f"{m} {_num(j, '.3f')}" for m, j in jumps.items())
        met = "meets" if keep is not None and keep >= 0.95 else "misses"
        out.append(f"{task}: rtc at d={delay} keeps {_num(keep, '.0%')} of its d=0 success ({met} >= 95 %); "
                   f"smallest switch jump among naive/blend/rtc: {best} ({listed})")
    return out


def plot(rows: list[dict], modes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in dict.fromkeys(r["task"] for r in rows) if any(not r.get("missing") for r in rows
                                                                    if r["task"] == t)]
    fig, axes = plt.subplots(2, max(1, len(tasks)), figsize=(5.5 * max(1, len(tasks)), 7), squeeze=False)
    for j, task in enumerate(tasks):
        for i, m in enumerate(modes):
            rs = sorted((r for r in rows if r["task"] == task and r["mode"] == m and r.get("n")),
                        key=lambda r: r["delay"])
            if not rs:
                continue
            x = [r["delay"] + 0.08 * (i - (len(modes) - 1) / 2) for r in rs]  # side by side: CIs stay visible
            y = [r["success_rate"] for r in rs]
            err = [[max(0, r["success_rate"] - r["ci95"][0]) for r in rs], [max(0, r["ci95"][1] - r["success_rate"])
                                                                              for r in rs]]
            axes[0][j].errorbar(x, y, yerr=err, marker="o", capsize=3, label=m)
            jumps = [(xi, r["mean_discontinuity"]) for xi, r in zip(x, rs) if r.get("mean_discontinuity") is not None]
            if jumps:
                axes[1][j].plot(*zip(*jumps), marker="o", label=m)
        n = max((r.get("n") or 0) for r in rows if r["task"] == task)
        axes[0][j].set(title=f"{task}: success (Wilson 95 % CI, n<={n})", xlabel="delay (control steps)",
                       ylabel="success rate", ylim=(0, 1.05))
        axes[1][j].set(title=f"{task}: action jump at chunk switches", xlabel="delay (control steps)",
                       ylabel="mean |Δa| (arm dims)")
        axes[0][j].legend(fontsize=8)
        axes[1][j].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", action="append", default=[], metavar="TASK=CHECKPOINT",
                    help="the vla demo recipe's checkpoint for a task (repeat per task)")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--delays", nargs="+", type=int, default=[0, 2, 4, 6])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--n", type=int, default=30, help="episodes per cell (default 30)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None, help="first episode seed (default: sim_eval's EVAL_SEED)")
    ap.add_argument("--out", default="realtime_bench")
    args = ap.parse_args(argv)
    bad = [p for p in args.policy if "=" not in p or p.split("=", 1)[0] not in args.tasks]
    if bad:
        ap.error(f"--policy {bad[0]!r}: expected TASK=CHECKPOINT with TASK among {args.tasks}")
    if args.seed is None:
        from sim_eval.seeds import EVAL_SEED

        args.seed = EVAL_SEED
    rows = sweep(args)
    out = Path(args.out)
    (out / "realtime.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print("\n".join(table(rows, args.modes)))
    print("jump = mean |Δaction| (arm dims) where a new chunk takes over; base = the same inside chunks (its natural "
          "scale); jerk = mean end-effector jerk (m/s³); steps = mean steps to success; sync runs once (delay costs "
          "it wall time, not behaviour)")
    print("\n".join(verdict(rows)))
    if any(r.get("n") for r in rows):
        plot(rows, args.modes, out / "realtime.png")
        print(f"wrote {out / 'realtime.json'}, {out / 'realtime.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
