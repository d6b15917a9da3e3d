"""Training throughput on all CPU cores: 1 process (+1 data-loader worker) vs N data-parallel processes
(``finetune.launch.train_processes``, gloo), side by side on the same data and model preset.

    python benchmarks/train_processes.py [--data RLDS_DIR] [--preset demo] [--seconds 60] [--processes 2]

Without ``--data`` a synthetic 2-camera RLDS dataset at the preset's image size is written first.
Each run trains for ``--seconds`` of wall time with the ``vla demo`` recipe's pipeline and optimizer
settings; samples/s counts the global batch (N x batch per step).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="RLDS/LeRobot dataset dir (default: a synthetic one)")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32, help="per process")
    ap.add_argument("--cache-mb", type=float, default=2048, help="decoded episodes kept in RAM per pipeline")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
    from finetune.config import TrainConfig
    from finetune.launch import train_processes
    from finetune.recipes import PRESETS, demo_augment
    from tests.finetune_helpers import toy_spec, write_toy_dataset
    from vla.policy import VLAPolicy

    cfg = PRESETS[args.preset]()
    tmp = Path(tempfile.mkdtemp(prefix="vla_bench_"))
    data_dir = args.data
    if data_dir is None:
        spec = toy_spec("bench_arm")
        data_dir = str(write_toy_dataset(tmp / "data", "bench_arm", episodes=20, steps=48, spec=spec,
                                         size=cfg.image_size[0]))
    data = PipelineConfig(datasets=(DatasetConfig(data_dir),), horizon=cfg.action_horizon, image_size=cfg.image_size,
                          buffer_episodes=16, augment=demo_augment(), cache_mb=args.cache_mb)
    spec = next(iter(Pipeline(data).embodiments.values()))
    make = functools.partial(VLAPolicy.create, cfg, [spec], seed=0)
    rows = []
    for procs in (1, args.processes):
        tc = TrainConfig(steps=1_000_000, batch_size=args.batch_size, lr=1e-3, warmup_steps=10, ema_decay=0.995,
                         save_every=1_000_000, keep_last=1, num_workers=1 if procs == 1 else 0, progress=False,
                         tensorboard=False, max_seconds=args.seconds)
        res = train_processes(make, data, tc, tmp / f"run{procs}", processes=procs, threads=1, resume=False)
        rows.append((procs, res.step, res.samples_per_second))
    print(f"preset {args.preset}, batch {args.batch_size} per process, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} cores")
    print(f"{'processes':>10}{'steps':>8}{'global batch':>14}{'samples/s':>11}")
    for procs, steps, sps in rows:
        print(f"{procs:>10}{steps:>8}{procs * args.batch_size:>14}{sps:>11.1f}")
    print(f"{args.processes} processes vs 1: {rows[1][2] / rows[0][2]:.2f}x samples/s")


if __name__ == "__main__":
    main()
