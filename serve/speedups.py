"""CPU-fast serving of a ``VLAPolicy``: prepacked fp32 linears, ``torch.compile`` of the expert step, int8 linears.

``predict`` already computes the prefix once and, per integration step, only the expert's token path (the time
MLP, adaLN and fixed tokens are precomputed per predict: ``vla.model.expert.ActionExpert.sampling_context``).
What is left is mostly small-M sgemm (18 expert tokens, ~28 prefix tokens), which these transforms speed up,
applied in place before serving:

  * ``prepack`` (default on CPU in ``vla serve``): every plain ``nn.Linear`` of the expert copies and, without LoRA
    adapters, of the backbone keeps its fp32 weight also in oneDNN's blocked layout and runs oneDNN's matmul on
    it (no per-call packing of the weight; ~1.5x faster per linear at 18 rows with weights out of cache).  Same
    actions up to fp32 rounding; calls that need gradients (real-time chunking guidance) use ``F.linear``.
  * ``compile``: ``torch.compile`` (inductor, frozen weights) of every expert copy's token path
    (``ActionExpert.run_blocks``) for batch size 1, static shapes; the prefix is padded (masked) to a multiple of
    16 tokens so prompts of any length share a graph.  Batches of 2+ and gradient calls run eager.  Same actions
    up to float rounding (tested to 1e-5).
  * ``quantize="bf16"``: the prepacked linears hold bf16 weights (inputs cast to bf16, fp32 accumulation; fast
    on CPUs with AVX512_BF16 / AMX).  Actions move by a stated tolerance.  Gradient calls run fp32 ``F.linear``.
  * ``quantize="int8"``: ``torch.ao`` dynamic quantization of the ``nn.Linear`` layers (int8 weights, activations
    quantized per call) of the expert copies and, when the checkpoint has no LoRA adapters, of the backbone's
    language model.  Actions move by a stated tolerance (benchmarks/inference_latency.py prints it).  Requests
    that need gradients through the expert (real-time chunking guidance) run an fp32 copy of it.

All are for serving only: the weights are no longer trainable parameters afterwards (prepack keeps them usable).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("serve.speedups")
QUANTIZE_CHOICES = ("none", "int8", "bf16")


@dataclass(frozen=True)
class SpeedupConfig:
    compile: bool = False
    quantize: str = "none"  # "none" | "int8" | "bf16"
    prepack: bool = False  # oneDNN-prepacked fp32 linears (``vla serve`` turns it on for CPU models)
    warmup: bool = True  # run one predict at load so the first request does not pay for compilation

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"--quantize must be one of {QUANTIZE_CHOICES}, got {self.quantize!r}")

    @property
    def enabled(self) -> bool:
        return self.compile or self.prepack or self.quantize != "none"


def expert_modules(policy) -> list[nn.Module]:
    """Every action-expert module a predict may run: the live one, the base copy and each adapter's copy."""
    mods = [policy.model.expert]
    adapters = getattr(policy, "adapters", None)
    if adapters is not None:
        mods += list(adapters.base_full.values()) + [m for full in adapters.full.values() for m in full.values()]
    out, seen = [], set()
    for m in mods:
        if id(m) not in seen and hasattr(m, "blocks"):  # ActionExpert instances only
            seen.add(id(m))
            out.append(m)
    return out


def _quantize_linears(module: nn.Module) -> None:
    import torch
    with warnings.catch_warnings():  # torch.ao's eager quantization warns about its move to torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


GRAD_SAFE_METHODS = ("forward", "run_blocks")  # the expert entry points a gradient call (RTC guidance) may use


def _int8_with_fp32_gradients(mod: nn.Module) -> None:
    """Quantize ``mod``'s linears in place; calls that need gradients (real-time chunking's guidance takes a
    vector-Jacobian product through the expert) run an fp32 copy, since int8 linears have no autograd kernel
    (torch would backprop through them silently wrong)."""
    import copy

    fp32 = copy.deepcopy(mod)  # held by the closures, not registered: the module's own layers are all int8
    _quantize_linears(mod)
    for name in GRAD_SAFE_METHODS:
        setattr(mod, name, _grad_dispatch(getattr(mod, name), getattr(fp32, name)))


def _grad_dispatch(no_grad_fn, grad_fn):
    import torch

    def call(*args, **kwargs):
        return (grad_fn if torch.is_grad_enabled() else no_grad_fn)(*args, **kwargs)

    return call


def quantize_int8(policy) -> list[str]:
    """Dynamic int8 for the ``nn.Linear`` layers of the expert copies (+ the LM when there are no adapters)."""
    import torch

    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
    mods = expert_modules(policy)
    for mod in mods:
        _int8_with_fp32_gradients(mod)
    done = [f"expert x{len(mods)}"]
    adapters = getattr(policy, "adapters", None)
    lm = getattr(policy.model.backbone, "lm", None)
    if lm is not None and not (adapters is not None and len(adapters)):
        _quantize_linears(lm)
        done.append("language model")
    return done


PREFIX_BUCKET = 16  # the prefix length is padded (masked) to a multiple of this: one graph per bucket


def _pad_prefix(prefix_kv, prefix_mask, bucket: int):
    """Pad the prefix K/V [B, h, L, d] and mask (bool [B, L] or additive bias [B, 1, 1, L]) to a multiple of
    ``bucket`` keys; padded keys are masked out."""
    import torch

    pad = -prefix_mask.shape[-1] % bucket
    if not pad:
        return prefix_kv, prefix_mask
    kv = [tuple(torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in pair) for pair in prefix_kv]
    masked = False if prefix_mask.dtype == torch.bool else float("-inf")
    return kv, torch.nn.functional.pad(prefix_mask, (0, pad), value=masked)


def _compiled_token_path(mod: nn.Module):
    """Batch size 1 (one robot, the latency case) runs a static-shape inductor graph with frozen weights;
    other batch sizes and anything needing gradients run the eager ``run_blocks`` (no compile stall mid-serving)."""
    import torch

    eager = mod.run_blocks
    compiled = torch.compile(eager, dynamic=False, options={"freezing": True})

    def run_blocks(noisy_actions, fixed_tokens, block_mods, final_mod, prefix_kv, prefix_mask):
        if noisy_actions.shape[0] != 1 or torch.is_grad_enabled():
            return eager(noisy_actions, fixed_tokens, block_mods, final_mod, prefix_kv, prefix_mask)
        prefix_kv, prefix_mask = _pad_prefix(prefix_kv, prefix_mask, PREFIX_BUCKET)
        return compiled(noisy_actions, fixed_tokens, block_mods, final_mod, prefix_kv, prefix_mask)

    return run_blocks


def compile_experts(policy) -> int:
    """Give each expert module a compiled batch-1 token path (see ``_compiled_token_path``); returns how many."""
    mods = expert_modules(policy)
    for mod in mods:
        if not getattr(mod, "_vla_compiled", False):
            mod.run_blocks = _compiled_token_path(mod)
            mod._vla_compiled = True
    return len(mods)


def prepack_policy(policy, experts: bool = True, dtype=None) -> list[str]:
    """``serve.packed_linear.PackedLinear`` for the plain linears of the expert copies (unless ``experts`` is
    False: a compiled expert packs its own weights) and of the backbone when there are no LoRA adapters;
    ``dtype`` (default fp32) of the packed weights."""
    import torch

    dtype = dtype or torch.float32
    if not torch.backends.mkldnn.is_available():
        log.warning("prepack: oneDNN is not available in this torch build; linears stay as they are")
        return []
    done = []
    if experts:
        mods = expert_modules(policy)
        done.append(f"expert x{len(mods)} ({sum(prepack_linears(m, dtype) for m in mods)} linears)")
    adapters = getattr(policy, "adapters", None)
    if not (adapters is not None and len(adapters)):
        done.append(f"backbone ({prepack_linears(policy.model.backbone, dtype)} linears)")
    return done


def prepack_linears(module: nn.Module, dtype=None) -> int:
    """Replace every exact ``nn.Linear`` under ``module`` by a ``PackedLinear`` (same parameters); count."""
    import torch

    from serve.packed_linear import PackedLinear

    n = 0
    for name, child in module.named_children():
        if type(child) is torch.nn.Linear:
            setattr(module, name, PackedLinear(child, dtype or torch.float32))
            n += 1
        else:
            n += prepack_linears(child, dtype)
    return n


def blank_observation(policy) -> dict:
    """A grey observation of the default embodiment at the model's image size (for warm-up)."""
    import numpy as np

    spec = policy.spec()
    h, w = policy.config.image_size
    return {"images": {c: np.full((h, w, 3), 128, np.uint8) for c in spec.cameras},
            "state": np.zeros(spec.state_dim, np.float32), "prompt": "warm up"}


def apply_speedups(policy, cfg: SpeedupConfig, warmup_observation=None) -> dict:
    """Quantize then compile ``policy`` in place (CPU serving); returns what was done and the warm-up time."""
    report: dict = {"compile": cfg.compile, "quantize": cfg.quantize, "prepack": cfg.prepack}
    if not cfg.enabled:
        return report
    if policy.model.device.type != "cpu" and cfg.quantize != "none":
        raise ValueError(f"--quantize {cfg.quantize} is for CPU serving (oneDNN / fbgemm kernels); the model is on "
                         f"{policy.model.device}")
    if cfg.quantize == "bf16" and cfg.compile:
        raise ValueError("--quantize bf16 runs prepacked oneDNN linears, which --compile would not keep: use one")
    if cfg.quantize == "int8":
        report["quantized"] = quantize_int8(policy)
    if cfg.quantize == "bf16":  # every plain linear, expert copies included
        import torch

        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            log.warning("--quantize bf16: this CPU has no native bf16 matmul (AVX512_BF16 / AMX); it will be slow")
        report["quantized"] = prepack_policy(policy, dtype=torch.bfloat16)
    elif cfg.prepack and policy.model.device.type == "cpu":
        report["prepacked"] = prepack_policy(policy, experts=not cfg.compile)
    if cfg.compile:
        report["compiled_experts"] = compile_experts(policy)
    if cfg.warmup:  # the shortest and the longest prompt: the prefix-length buckets requests will use
        t = time.perf_counter()
        obs = warmup_observation or blank_observation(policy)
        for prompt in (obs["prompt"], " ".join(["pick"] * 64)):
            policy.predict([{**obs, "prompt": prompt}], seed=0)
        report["warmup_s"] = round(time.perf_counter() - t, 1)
    log.info("speedups: %s", report)
    return report
