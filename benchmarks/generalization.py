"""The generalization scorecard: recipe variants trained on the same budget, evaluated on nominal and every
perturbation factor; success with Wilson CI and retention vs nominal per cell, as a table and a heatmap PNG.

    python benchmarks/generalization.py list
    python benchmarks/generalization.py run --variant conv --task Lift [--out scorecard] [--train-minutes 16]
    python benchmarks/generalization.py run --variant conv+rand+aug --task PickPlaceCan ...
    python benchmarks/generalization.py merge [--out scorecard]     # table + scorecard/heatmap.png

Each ``run`` is one ``vla demo`` (collect scripted demos -> train -> evaluate) with the variant's recipe flags,
in ``OUT/<task>/<variant>``; demos are shared by variants that collect the same way (``OUT/<task>/data-*``).
The whole sweep takes hours on 2 cores, so variants run one at a time (in the background, or on other machines
with the same ``--out`` layout) and ``merge`` prints whatever has finished. A variant whose training does not
fit the budget still reports what it reached (steps and samples/s are in the table).
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
sys.path.insert(0, str(ROOT))

from sim_eval.factors import FACTORS  # noqa: E402  (after the sys.path line above)

# nuisance factors a policy should shrug off (the sim_eval registry), and those whose severities 1..3 are swept
ALL_FACTORS = tuple(FACTORS)
SWEPT = ("lighting", "table_color", "object_color", "distractors")
RANDOMIZED = ("lighting@2", "table_color@2", "object_color@2", "distractors@2")

# variant -> (`vla demo` recipe flags, demo sets); everything else, including the training budget, is shared.
# Demo sets: "nominal" = --demos N nominal demos; "rand" = N randomized ones only; "mix" = N/2 nominal + N randomized
# at equal sampling weight (one training sample in two comes from each set).
TIMM = ["--image-encoder", "timm:efficientnet_lite0"]
VARIANTS: dict[str, tuple[list[str], str]] = {
    "conv": (["--image-encoder", "conv", "--augment", "none"], "nominal"),
    "conv+aug": (["--image-encoder", "conv", "--augment", "strong"], "nominal"),
    "conv+rand": (["--image-encoder", "conv", "--augment", "none"], "rand"),
    "conv+rand+aug": (["--image-encoder", "conv", "--augment", "strong"], "rand"),
    "timm": ([*TIMM, "--augment", "none"], "nominal"),
    "timm+rand": ([*TIMM, "--augment", "none"], "rand"),
    "timm+mix": ([*TIMM, "--augment", "none"], "mix"),
    "timm+mix+film": ([*TIMM, "--augment", "none", "--image-film", "on"], "mix"),
    "timm+rand+aug": ([*TIMM, "--augment", "strong"], "rand"),
}


def demo_flags(demos: str, n: int) -> list[str]:
    """`vla demo` flags of a variant's demo sets (variants with the same sets share their data dir)."""
    nominal, randomized = {"nominal": (n, 0), "rand": (0, n), "mix": (n // 2, n)}[demos]
    return ["--demos", str(nominal), "--randomized-demos", str(randomized),
            "--randomize", *(RANDOMIZED if randomized else ["none"])]


def conditions(severities: str) -> list[str]:
    """All factors at severity 2, plus severities 1 and 3 of the swept ones (``severities='sweep'``)."""
    out = [f"{f}@2" for f in ALL_FACTORS]
    if severities == "sweep":
        out += [f"{f}@{s}" for f in SWEPT for s in (1, 3)]
    return out


def run(args: argparse.Namespace) -> None:
    if args.variant not in VARIANTS:
        sys.exit(f"unknown variant {args.variant!r}; choose from {sorted(VARIANTS)}")
    flags, demos = VARIANTS[args.variant]
    flags = flags if "--image-film" in flags else [*flags, "--image-film", "off"]  # a variant names its recipe
    out = Path(args.out) / args.task / args.variant
    cmd = [sys.executable, "-m", "vla.cli", "demo", "--task", args.task, "--out", str(out),
           "--data-dir", str(Path(args.out) / args.task / f"data-{demos}"), *demo_flags(demos, args.demos),
           "--train-minutes", str(args.train_minutes), "--eval-episodes", str(args.episodes),
           "--factor-episodes", str(args.episodes), "--factors", *conditions(args.severities), *flags]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    print("[scorecard] " + " ".join(cmd), flush=True)
    t = time.perf_counter()
    rc = subprocess.run(cmd, env=env).returncode
    print(f"[scorecard] {args.task}/{args.variant}: exit {rc} after {(time.perf_counter() - t) / 60:.1f} min")
    sys.exit(rc)


def load(out: Path) -> list[dict]:
    """Every finished variant under ``out``: task, variant, training figures and per-condition rows."""
    found = []
    for path in sorted(out.glob("*/*/report/report.json")):
        report = json.loads(path.read_text())
        task, variant = path.parts[-4], path.parts[-3]
        found.append({"task": task, "variant": variant, "training": report["meta"].get("training", {}),
                      "recipe": report["meta"].get("recipe", {}),
                      "rows": {o["condition"]: o for o in report["summary"]["overall"]}})
    return found


def cell(row: dict | None) -> str:
    if row is None or row["success_rate"] is None:
        return "–"
    lo, hi = row["ci95"]
    ret = "" if row.get("retention") is None else f" r{row['retention']:.2f}"
    return f"{row['success_rate']:.0%} [{lo:.2f},{hi:.2f}]{ret}"


def merge(args: argparse.Namespace) -> None:
    found = load(Path(args.out))
    if not found:
        sys.exit(f"no finished variants under {args.out} (expected {args.out}/<task>/<variant>/report/report.json)")
    for task in sorted({f["task"] for f in found}):
        runs = [f for f in found if f["task"] == task]
        conds = sorted({c for f in runs for c in f["rows"]}, key=lambda c: (c != "nominal", c))
        width = 27
        print(f"\n{task}: success [Wilson 95 % CI] and retention r = success / nominal success")
        print(f"{'condition':<16}" + "".join(f"{f['variant']:>{width}}" for f in runs))
        for c in conds:
            print(f"{c:<16}" + "".join(f"{cell(f['rows'].get(c)):>{width}}" for f in runs))
        n = {f["variant"]: f["rows"].get("nominal", {}).get("n") for f in runs}
        print(f"{'n (nominal)':<16}" + "".join(f"{str(n[f['variant']]):>{width}}" for f in runs))
        print(f"{'train steps':<16}" + "".join(f"{str(f['training'].get('steps')):>{width}}" for f in runs))
        sps = [f["training"].get("samples_per_second") for f in runs]
        print(f"{'samples/s':<16}" + "".join(f"{(f'{s:.0f}' if s else '–'):>{width}}" for s in sps))
        below = {f["variant"]: [c for c in conds if c != "nominal" and (f["rows"].get(c) or {}).get("retention")
                                is not None and f["rows"][c]["retention"] < 0.8] for f in runs}
        for v, cs in below.items():
            print(f"  {v}: retention < 0.80 under {', '.join(cs) if cs else 'no factor'}")
    png = Path(args.out) / "heatmap.png"
    heatmap(found, png)
    print(f"\nheatmap: {png}")


def heatmap(found: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    conds = sorted({c for f in found for c in f["rows"]}, key=lambda c: (c != "nominal", c))
    labels = [f"{f['task']} / {f['variant']}" for f in found]
    grid = np.full((len(found), len(conds)), np.nan)
    for i, f in enumerate(found):
        for j, c in enumerate(conds):
            r = f["rows"].get(c)
            if r and r["success_rate"] is not None:
                grid[i, j] = r["success_rate"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * len(conds), 1.2 + 0.45 * len(found)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    for i, f in enumerate(found):
        for j, c in enumerate(conds):
            r = f["rows"].get(c)
            if r and r["success_rate"] is not None:
                ret = "" if r.get("retention") is None or c == "nominal" else f"\nr{r['retention']:.2f}"
                ax.text(j, i, f"{r['success_rate']:.0%}{ret}", ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(len(conds)), conds, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(found)), labels, fontsize=7)
    ax.set_title("success per condition (r = retention vs nominal)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.025)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lst = sub.add_parser("list", help="the recipe variants and their `vla demo` flags")
    lst.add_argument("--demos", type=int, default=100)
    r = sub.add_parser("run", help="train + evaluate one variant on one task")
    r.add_argument("--variant", required=True)
    r.add_argument("--task", default="Lift")
    r.add_argument("--out", default="scorecard")
    r.add_argument("--demos", type=int, default=100)
    r.add_argument("--train-minutes", type=float, default=16.0)
    r.add_argument("--episodes", type=int, default=20, help="episodes per condition (default 20)")
    r.add_argument("--severities", choices=["sweep", "2"], default="sweep",
                   help="'sweep': severities 1-3 for " + ", ".join(SWEPT) + "; '2': severity 2 only")
    m = sub.add_parser("merge", help="print the table of every finished variant and write the heatmap")
    m.add_argument("--out", default="scorecard")
    args = ap.parse_args()
    if args.cmd == "list":
        for name, (flags, demos) in VARIANTS.items():
            print(f"{name:<16} {' '.join(flags + demo_flags(demos, args.demos))}")
    elif args.cmd == "run":
        run(args)
    else:
        merge(args)


if __name__ == "__main__":
    main()
