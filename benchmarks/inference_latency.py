"""Inference latency of VLAPolicy.predict, measured side by side in one run.

1. Prefix encoded once per predict (the prefix K/V cached for all integration steps) vs
   recomputed at every one of the 10 steps: p50/p90 latency, ratio, and max action difference.
2. p50 latency of the default (embedded) model for 2 cameras at 224x224 on this machine.
3. CPU serving variants side by side (what ``vla serve --compile / --quantize int8`` do, serve.speedups):
   fp32 eager vs expert compiled vs int8 vs int8+compiled: p50/p99 predict, max action difference vs fp32,
   and the arithmetic (FLOPs of one expert step and of the prefix, counted by torch's FlopCounterMode).
   The expert's zero-initialised layers get random weights first, so differences are not trivially zero.
4. On a CUDA machine only: a PaliGemma-3B-sized random-weight config (SigLIP-So400m + Gemma-2B,
   action expert width 1024 x 18 blocks) at bf16 (anchor: openpi pi0 ~73 ms on an RTX 4090).

    python benchmarks/inference_latency.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vla.config import BackboneConfig, ExpertConfig, default_config  # noqa: E402
from vla.policy import VLAPolicy  # noqa: E402
from vla.types import EmbodimentSpec  # noqa: E402

SPEC = EmbodimentSpec(name="panda", cameras=("agentview", "wrist"), state_dim=9, action_dim=7, gripper_dims=(6,))


def observation(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        "images": {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in SPEC.cameras},
        "state": rng.normal(size=9).astype(np.float32),
        "prompt": "pick up the red cube and lift it",
    }


def timed(fn, repeats: int, sync=lambda: None, q: float = 90, cpu: list | None = None):
    """(output, wall p50 ms, wall p``q`` ms); ``cpu`` collects this thread's CPU ms per call (robust to a busy
    machine: time spent waiting for a core is not counted)."""
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.thread_time()
        out = fn()
        sync()
        times.append(1000 * (time.perf_counter() - t))
        if cpu is not None:
            cpu.append(1000 * (time.thread_time() - c))
    return out, np.percentile(times, 50), np.percentile(times, q)


def _trained_like(policy: VLAPolicy) -> VLAPolicy:
    """Give the zero-initialised adaLN / output layers random weights (a trained expert is not a no-op)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.model.expert.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return policy


def arithmetic(policy: VLAPolicy, obs) -> tuple[float, float]:
    """(GFLOP of one expert step, GFLOP of the prefix) for one observation."""
    from torch.utils.flop_counter import FlopCounterMode

    model = policy.model
    batch = policy.prepare(obs)
    with torch.no_grad():
        with FlopCounterMode(display=False) as prefix:
            kv, mask = model.encode_prefix(batch)
        x = torch.zeros(1, policy.config.action_horizon, policy.config.max_action_dim)
        with FlopCounterMode(display=False) as step:
            model._predict_fn(batch, kv, mask)(x, torch.ones(1))
    return step.get_total_flops() / 1e9, prefix.get_total_flops() / 1e9


def variants_section(repeats: int) -> None:
    import copy

    from serve.speedups import SpeedupConfig, apply_speedups

    base = _trained_like(VLAPolicy.create(default_config(), [SPEC]))
    obs = [observation(224)]
    step_gf, prefix_gf = arithmetic(base, obs)
    steps = base.config.head.num_inference_steps
    ref = base.predict(obs, seed=0)[0]
    rows = []
    for name, cfg in (
        ("fp32 eager", None),
        ("fp32, expert compiled", SpeedupConfig(compile=True)),
        ("int8 dynamic", SpeedupConfig(quantize="int8")),
        ("int8 + compiled", SpeedupConfig(compile=True, quantize="int8")),
    ):
        policy = base if cfg is None else copy.deepcopy(base)
        setup = apply_speedups(policy, cfg).get("warmup_s", 0.0) if cfg else 0.0
        cpu: list[float] = []
        out, p50, p99 = timed(lambda p=policy: p.predict(obs, seed=0), repeats, q=99, cpu=cpu)
        rows.append((name, p50, p99, float(np.median(cpu)), float(np.abs(out[0] - ref).max()), setup))
    print(f"\n== CPU serving variants, default model, 1 obs (2 cameras 224²), {steps} flow steps, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f} ==")
    print(f"{'variant':<24}{'p50 ms':>9}{'p99 ms':>9}{'CPU p50 ms':>12}{'vs fp32 (CPU)':>15}{'max |Δaction|':>15}"
          f"{'setup s':>9}")
    for name, p50, p99, cpu_p50, diff, setup in rows:
        print(f"{name:<24}{p50:>9.1f}{p99:>9.1f}{cpu_p50:>12.1f}{rows[0][3] / cpu_p50:>14.2f}x{diff:>15.2e}"
              f"{setup:>9.1f}")
    print(f"action scale max |a| = {np.abs(ref).max():.2f}; compiled must stay <= 1e-5 (fp32 rounding)")
    total = prefix_gf + steps * step_gf
    print(f"arithmetic: expert step {step_gf * 1e3:.0f} MFLOP x {steps} + prefix {prefix_gf * 1e3:.0f} MFLOP = "
          f"{total:.2f} GFLOP per predict; at 40 GFLOP/s (one AVX2 core, fp32 sgemm at these sizes) that is "
          f">= {total / 40 * 1e3:.0f} ms")


def cpu_section(repeats: int) -> None:
    policy = VLAPolicy.create(default_config(), [SPEC])
    obs = [observation(224)]
    print(
        f"default embedded model: {policy.num_parameters() / 1e6:.1f}M params, "
        f"{policy.config.head.num_inference_steps} flow steps, horizon {policy.config.action_horizon}, "
        f"torch threads {torch.get_num_threads()}"
    )
    once, p50_once, p90_once = timed(lambda: policy.predict(obs, seed=0), repeats)
    every, p50_every, p90_every = timed(lambda: policy.predict(obs, seed=0, reuse_prefix=False), repeats)
    diff = float(np.abs(once[0] - every[0]).max())
    print("\n== prefix encoded once vs every integration step (1 obs, 2 cameras 224², CPU) ==")
    print(f"{'mode':<28}{'p50 ms':>10}{'p90 ms':>10}")
    print(f"{'prefix once (cached K/V)':<28}{p50_once:>10.1f}{p90_once:>10.1f}")
    print(f"{'prefix every step':<28}{p50_every:>10.1f}{p90_every:>10.1f}")
    print(
        f"speed-up p50: {p50_every / p50_once:.2f}x (goal >= 3x); max |action difference|: {diff:.2e} (must be <= 1e-5)"
    )
    print(f"\n== default model, 2 cameras 224², CPU: p50 {p50_once:.1f} ms, p90 {p90_once:.1f} ms ==")


def gpu_section(repeats: int) -> None:
    if not torch.cuda.is_available():
        print("\n== PaliGemma-3B-sized bf16 on GPU: skipped (no CUDA device on this machine) ==")
        return
    from gpu_check import SIZES, save_paligemma  # the one PaliGemma-3B-sized builder (benchmarks/gpu_check.py)

    with tempfile.TemporaryDirectory() as tmp:
        save_paligemma(Path(tmp), SIZES["full"]["paligemma"], "cuda", torch.bfloat16)
        vcfg = dataclasses.replace(
            default_config(),
            backbone=BackboneConfig(kind="hf", hf_model=tmp, hf_dtype="bfloat16"),
            expert=ExpertConfig(width=1024, depth=18, heads=8),
            image_size=(224, 224),
            action_horizon=50,
        )
        policy = VLAPolicy.create(vcfg, [SPEC])
        policy.model.to("cuda")
        obs = [observation(224)]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, p50, p90 = timed(lambda: policy.predict(obs, seed=0), repeats, torch.cuda.synchronize)
        print(f"\n== PaliGemma-3B-sized (random weights) + 1024x18 expert, bf16, {torch.cuda.get_device_name()} ==")
        print(f"p50 {p50:.1f} ms, p90 {p90:.1f} ms (anchor: openpi pi0 ~73 ms on an RTX 4090)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only-variants", action="store_true", help="only section 3 (the serving variants)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 suits batch-1 inference of small models on a 2-core machine)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.only_variants:
        cpu_section(args.repeats)
    variants_section(args.repeats)
    if not args.only_variants:
        gpu_section(args.repeats)


if __name__ == "__main__":
    main()
