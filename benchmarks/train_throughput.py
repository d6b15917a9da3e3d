"""Training throughput of full vs LoRA fine-tuning, side by side: samples/s and peak memory.

Each mode runs in its own process (peak RSS / CUDA peak is per process) on synthetic batches of the
chosen preset (default: the embedded default model), using the trainer's own trainable-parameter
setup, AdamW and grad clipping.

    python benchmarks/train_throughput.py [--preset default|demo|tiny] [--batch-size 8] [--steps 6]
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


def run_one(preset: str, mode: str, batch: int, steps: int, threads: int) -> dict:
    import resource

    import numpy as np
    import torch

    from finetune.config import LoraSettings, TrainConfig
    from finetune.recipes import PRESETS
    from finetune.trainer import count_params, setup_trainable
    from tests.finetune_helpers import toy_spec
    from vla.policy import VLAPolicy

    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_flush_denormal(True)
    cfg = PRESETS[preset]()
    h, w = cfg.image_size
    spec = toy_spec("bench_arm")
    policy = VLAPolicy.create(cfg, [spec])
    policy.model.to(device)
    tc = TrainConfig(lora=LoraSettings() if mode == "lora" else None)
    params = setup_trainable(policy, tc, spec.name)
    trainable = sum(p.numel() for p in params)
    _, total = count_params(policy.model)
    opt = torch.optim.AdamW(params, lr=1e-4)
    rng = np.random.default_rng(0)
    samples = [{"images": {c: rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for c in spec.cameras},
                "state": rng.normal(size=spec.state_dim).astype(np.float32), "prompt": f"lift the cube number {i % 4}",
                "actions": rng.normal(size=(cfg.action_horizon, spec.action_dim)).astype(np.float32),
                "embodiment": spec.name} for i in range(batch)]
    policy.model.train()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        loss = policy.model.compute_loss(policy.collate(samples))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # first steps warm up allocators / caches
            times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"mode": mode, "preset": preset, "device": device, "batch": batch, "trainable": trainable, "total": total,
            "step_s": float(np.median(times)), "samples_per_s": batch / float(np.median(times)),
            "peak_mib": peak, "rss_before_mib": rss0 / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.preset, args.one, args.batch_size, args.steps, args.threads)))
        return
    rows = []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for mode in ("full", "lora"):
        out = subprocess.run([sys.executable, __file__, "--one", mode, "--preset", args.preset, "--batch-size",
                              str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads)],
                             env=env, capture_output=True, text=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{mode} run failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(line[7:]))
    full, lora = rows
    print(f"preset {args.preset}, batch {args.batch_size}, {full['device']}, {args.threads} thread(s), "
          f"median of {args.steps} steps")
    print(f"{'':<22}{'full':>14}{'LoRA':>14}{'LoRA/full':>11}")
    for key, label, fmt in (("trainable", "trainable params", "{:,.0f}"), ("total", "total params", "{:,.0f}"),
                            ("step_s", "s / step", "{:.3f}"), ("samples_per_s", "samples / s", "{:.1f}"),
                            ("peak_mib", "peak memory MiB", "{:.0f}")):
        print(f"{label:<22}{fmt.format(full[key]):>14}{fmt.format(lora[key]):>14}{lora[key] / full[key]:>10.2f}x")


if __name__ == "__main__":
    main()
