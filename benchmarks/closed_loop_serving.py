"""Closed-loop success through the server with compressed frames and CPU speed-ups, side by side.

For each variant a ``vla serve --checkpoint CKPT [...]`` process runs on loopback and ``vla eval --policy URL``
drives the Lift task through it (same seeds for every variant): raw frames fp32 (the baseline), JPEG frames
at --jpeg-quality (``?image_format=jpeg`` on the URL: the robot-side client encodes, the server decodes),
``--quantize int8`` and ``--compile``.  Prints success, Wilson 95 % CI, n, whether the CI overlaps the
baseline's, and per-episode agreement with the baseline (same seed, same outcome).

    python benchmarks/closed_loop_serving.py --checkpoint RUN/policy [--episodes 50] [--variants raw,jpeg,int8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_latency import vla_serve  # noqa: E402

VARIANTS = {  # name -> (vla serve flags, client URL query)
    "raw": ([], ""),
    "jpeg": ([], "?image_format=jpeg&jpeg_quality={q}"),
    "png": ([], "?image_format=png"),
    "int8": (["--quantize", "int8"], ""),
    "compiled": (["--compile"], ""),
}


def evaluate(ckpt: str, variant: str, args, out: Path) -> dict:
    flags, query = VARIANTS[variant]
    with vla_serve("--checkpoint", ckpt, "--max-batch", "8", "--max-wait-ms", "5", *flags) as url:
        cmd = [sys.executable, "-m", "vla.cli", "eval", "--policy", url + query.format(q=args.jpeg_quality),
               "--task", args.task, "--episodes", str(args.episodes), "--workers", str(args.workers), "--videos", "0",
               "--seed", str(args.seed), "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "egl"})
    if proc.returncode:
        raise RuntimeError(f"{variant}: vla eval failed:\n{proc.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    row = next(r for r in report["summary"]["rows"] if r["condition"] == "nominal")
    outcomes = {e["seed"]: bool(e["success"]) for e in report["episodes"] if e.get("condition") == "nominal"}
    return {**row, "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--jpeg-quality", type=int, default=90)
    ap.add_argument("--variants", default="raw,jpeg,int8")
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or names[0] != "raw":
        raise SystemExit(f"--variants: the first must be 'raw' (the baseline); known {sorted(VARIANTS)}; got {names}")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="vla_closed_loop_") as tmp:
        for name in names:
            rows[name] = evaluate(args.checkpoint, name, args, Path(tmp) / name)
            r = rows[name]
            print(f"{name}: {r['successes']}/{r['n']}", flush=True)
    base = rows["raw"]
    print(f"\n== {args.task}, {args.episodes} episodes per variant (seeds {args.seed}..), policy {args.checkpoint} ==")
    print(f"{'variant':<22}{'success':>9}{'95% CI (Wilson)':>20}{'n':>5}{'CI overlaps raw':>17}{'same outcome':>14}")
    for name, r in rows.items():
        label = f"jpeg q{args.jpeg_quality}" if name == "jpeg" else name
        lo, hi = r["ci95"]
        overlap = lo <= base["ci95"][1] and base["ci95"][0] <= hi
        agree = sum(r["outcomes"].get(s) == o for s, o in base["outcomes"].items()) / max(len(base["outcomes"]), 1)
        print(f"{label:<22}{r['success_rate']:>9.0%}{f'[{lo:.2f}, {hi:.2f}]':>20}{r['n']:>5}"
              f"{'yes' if overlap else 'NO':>17}{agree:>13.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
