"""Training speed of the ``vla demo`` model on two torch builds (two Python environments), side by side.

    python benchmarks/torch_builds.py --python /path/to/other/venv/bin/python [--rounds 3] [--batch-size 32]

Each round runs one training measurement (``benchmarks/train_throughput.py --one full``: the demo preset,
synthetic batches, AdamW + grad clip, median step time) in this interpreter and in the other one,
alternating, so machine noise hits both alike. Prints samples/s per build (median over rounds) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT = ROOT / "benchmarks" / "train_throughput.py"


def measure(python: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([python, str(THROUGHPUT), "--one", "full", "--preset", args.preset, "--batch-size",
                          str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads)],
                         env=env, capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"measurement with {python} failed:\n{out.stderr[-3000:]}")
    version = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                             text=True).stdout.strip()
    return {**json.loads(line[7:]), "torch": version}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="the other environment's python (e.g. a venv with torch 2.13)")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pythons = {"this": sys.executable, "other": args.python}
    runs: dict[str, list[dict]] = {k: [] for k in pythons}
    for r in range(args.rounds):
        for key in (("this", "other") if r % 2 == 0 else ("other", "this")):
            runs[key].append(measure(pythons[key], args))
            print(f"round {r + 1}: {runs[key][-1]['torch']:<16} {runs[key][-1]['samples_per_s']:7.1f} samples/s",
                  flush=True)
    sps = {k: statistics.median(x["samples_per_s"] for x in v) for k, v in runs.items()}
    print(f"\npreset {args.preset}, batch {args.batch_size}, {args.threads} thread(s), median of {args.rounds} rounds "
          f"x {args.steps} steps")
    for key in pythons:
        print(f"  torch {runs[key][0]['torch']:<16} {sps[key]:7.1f} samples/s   ({pythons[key]})")
    print(f"  ratio this/other: {sps['this'] / sps['other']:.3f}")


if __name__ == "__main__":
    main()
