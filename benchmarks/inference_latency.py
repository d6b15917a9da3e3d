"""Inference latency of VLAPolicy.predict, measured side by side in one run.

1. Prefix encoded once per predict (the prefix K/V cached for all integration steps) vs
   recomputed at every one of the 10 steps: p50/p90 latency, ratio, and max action difference.
2. p50 latency of the default (embedded) model for 2 cameras at 224x224 on this machine.
3. CPU predict variants side by side, in interleaved rounds: the plain eager path as it was before the serving
   speed-ups (vla.model.reference) vs today's predict vs the ``vla serve`` transforms (serve.speedups: prepacked
   linears = the serve default, --compile, --quantize int8 / bf16): p50/p99 wall and CPU ms, max action difference
   vs the baseline; then where the time goes (profiler by kernel kind) against the arithmetic (FlopCounterMode),
   and batching in one process (1 vs 8 observations per predict) with its ceiling at this core's sgemm rate.
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
    """(GFLOP of one expert step, GFLOP of the prefix + the per-predict sampling context) for ``obs`` (torch's
    FlopCounterMode, fast path)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = policy.model
    batch = policy.prepare(obs)
    with torch.no_grad():
        with FlopCounterMode(display=False) as prefix:
            kv, mask = model.encode_prefix(batch)
            fn = model._sampling_fn(batch, kv, mask)
        x = torch.zeros(len(obs), policy.config.action_horizon, policy.config.max_action_dim)
        with FlopCounterMode(display=False) as step:
            fn(x, torch.ones(len(obs)), step=0)
    return step.get_total_flops() / 1e9, prefix.get_total_flops() / 1e9


MATMUL_OPS = ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm", "aten::bmm", "quantized::linear_dynamic")
KERNEL_KINDS = {"matmul": MATMUL_OPS, "conv": ("aten::mkldnn_convolution",),
                "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",)}


def time_breakdown(fn) -> dict[str, float]:
    """CPU ms of one ``fn()`` by kernel kind (torch.profiler self time): matmul, conv, attention, other."""
    from torch.profiler import profile

    fn()
    with profile() as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    out = {kind: sum(e.self_cpu_time_total for e in events if e.key in names) / 1e3
           for kind, names in KERNEL_KINDS.items()}
    out["other"] = total - sum(out.values())
    return out


VARIANTS = (  # name, SpeedupConfig kwargs (None: the plain eager reference path, i.e. predict before this work)
    ("baseline: plain eager (before)", None),
    ("predict (fast path)", {}),
    ("+ prepacked linears (serve default)", {"prepack": True}),
    ("+ expert compiled (--compile)", {"prepack": True, "compile": True}),
    ("int8 (--quantize int8)", {"prepack": True, "quantize": "int8"}),
    ("bf16 (--quantize bf16)", {"quantize": "bf16"}),
)


def _variant_policies(base: VLAPolicy) -> list[tuple[str, VLAPolicy, object, float]]:
    """(name, policy, predict function, setup s) per variant; each speed-up on its own copy of ``base``."""
    import copy

    from serve.speedups import SpeedupConfig, apply_speedups
    from vla.model.reference import reference_predict

    out = []
    for name, kwargs in VARIANTS:
        if kwargs is None:
            out.append((name, base, lambda obs, seed, p=base: reference_predict(p, obs, seed=seed), 0.0))
            continue
        policy = copy.deepcopy(base)
        setup = apply_speedups(policy, SpeedupConfig(**kwargs)).get("warmup_s", 0.0) if kwargs else 0.0
        out.append((name, policy, lambda obs, seed, p=policy: p.predict(obs, seed=seed), setup))
    return out


def _interleaved(fns: list, repeats: int, rounds: int = 4) -> list[tuple[list[float], list[float]]]:
    """(wall ms, CPU ms) per call for each fn, timed in ``rounds`` alternating rounds (a load change on the
    shared machine then hits every variant alike)."""
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()  # warm-up
    for r in range(rounds):
        for i, fn in enumerate(fns):
            for _ in range(repeats // rounds + (r < repeats % rounds)):
                t, c = time.perf_counter(), time.thread_time()
                fn()
                walls[i].append(1000 * (time.perf_counter() - t))
                cpus[i].append(1000 * (time.thread_time() - c))
    return list(zip(walls, cpus))


def variants_section(repeats: int) -> None:
    base = _trained_like(VLAPolicy.create(default_config(), [SPEC]))
    obs = [observation(224)]
    steps = base.config.head.num_inference_steps
    variants = _variant_policies(base)
    ref = variants[0][2](obs, 0)[0]
    outs = [fn(obs, 0)[0] for _, _, fn, _ in variants]
    timings = _interleaved([lambda fn=fn: fn(obs, 0) for _, _, fn, _ in variants], repeats)
    print(f"\n== CPU predict, default model, 1 obs (2 cameras 224² -> {base.config.image_size[0]}²), {steps} flow "
          f"steps, {torch.get_num_threads()} thread(s), n={repeats} each (interleaved rounds), load average "
          f"{os.getloadavg()[0]:.1f} ==")
    print(f"{'variant':<38}{'p50 ms':>8}{'p99 ms':>8}{'CPU p50':>9}{'CPU p99':>9}{'x base (CPU)':>13}"
          f"{'max |Δaction|':>15}{'setup s':>9}")
    base_cpu = float(np.median(timings[0][1]))
    for (name, _, _, setup), (wall, cpu), out in zip(variants, timings, outs):
        c50 = float(np.median(cpu))
        print(f"{name:<38}{np.percentile(wall, 50):>8.1f}{np.percentile(wall, 99):>8.1f}{c50:>9.1f}"
              f"{np.percentile(cpu, 99):>9.1f}{base_cpu / c50:>12.2f}x{float(np.abs(out - ref).max()):>15.2e}"
              f"{setup:>9.1f}")
    print(f"max |Δaction| is vs the baseline's actions (same seed); action scale max |a| = {np.abs(ref).max():.2f}. "
          f"fp32 variants must stay <= 1e-5 (rounding); int8 / bf16 state theirs here")
    floor_section(base, variants[2][1], obs)
    batching_section(base, variants[0], variants[2])


def floor_section(fast: VLAPolicy, packed: VLAPolicy, obs) -> None:
    """Where the fastest exact variant's time goes, and the arithmetic floor at this core's measured sgemm rate."""
    step_gf, prefix_gf = arithmetic(fast, obs)
    steps = fast.config.head.num_inference_steps
    total_gf = prefix_gf + steps * step_gf
    parts = time_breakdown(lambda: packed.predict(obs, seed=0))
    kernels = parts["matmul"] + parts["conv"] + parts["attention"]
    print("\n== where the time goes: prepacked fp32 predict, CPU ms by kernel kind (torch.profiler) ==")
    print("  ".join(f"{k} {v:.1f}" for k, v in parts.items()) + f"  (total {sum(parts.values()):.1f})")
    print(f"arithmetic: expert step {step_gf * 1e3:.0f} MFLOP x {steps} + prefix {prefix_gf * 1e3:.0f} MFLOP = "
          f"{total_gf:.2f} GFLOP per predict, run at {total_gf / kernels * 1e3:.0f} GFLOP/s by its matmul/conv/"
          f"attention kernels; those kernels alone take {kernels:.1f} ms, so predict <= 30 ms at fp32 "
          f"{'is' if kernels < 30 else 'is NOT'} reachable on this core without fewer FLOPs or lower precision")


def batching_section(fast: VLAPolicy, baseline, packed) -> None:
    """predict of 8 observations vs 1: CPU ms per observation, and the ceiling of the ratio at peak sgemm."""
    obs8 = [observation(224, s) for s in range(8)]
    seeds = list(range(8))
    print("\n== batching in one process: CPU ms per observation, predict of 1 vs of 8 observations ==")
    for name, _policy, fn, _ in (baseline, packed):
        (_, one), (_, eight) = _interleaved([lambda f=fn: f(obs8[:1], 0), lambda f=fn: f(obs8, seeds)], 8, rounds=2)
        one_ms, eight_ms = float(np.median(one)), float(np.median(eight)) / 8
        print(f"{name:<38} 1 obs {one_ms:6.1f}   8 obs {eight_ms:6.1f} per obs   = {one_ms / eight_ms:.2f}x")
    step_gf, prefix_gf = arithmetic(fast, obs8)  # FlopCounterMode does not see the prepacked (oneDNN) linears
    parts = time_breakdown(lambda: packed[2](obs8, seeds))
    kernels = parts["matmul"] + parts["conv"] + parts["attention"]
    gflop = (prefix_gf + fast.config.head.num_inference_steps * step_gf) / 8
    print(f"8 obs: {gflop:.2f} GFLOP per obs; the batch's kernels run at {gflop * 8 / kernels * 1e3:.0f} GFLOP/s "
          f"and alone take {kernels / 8:.1f} ms per obs: the most batching can give over a {one_ms:.1f} ms single "
          f"predict is {one_ms / (kernels / 8):.1f}x on this core (at that rate a single predict's arithmetic would "
          f"take {gflop / (gflop * 8 / kernels):.1f} ms: the floor batch 1 cannot reach with small-row kernels)")


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
