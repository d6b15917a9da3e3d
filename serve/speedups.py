"""CPU-fast serving of a ``VLAPolicy``: ``torch.compile`` of the action-expert step and dynamic int8 linears.

The expert runs ``num_inference_steps`` times per predict on ~H+2 tokens (measured on the default model: 136
MFLOP per step, ~70 % of its time in small sgemm calls, the rest per-op overhead); the prefix runs once.
Two opt-in transforms, applied in place before serving:

  * ``compile``: ``torch.compile`` (inductor) of every action-expert module's ``forward`` (the base and each
    adapter's copy) for batch size 1, static shapes, weights frozen into the graph (constant folding, prepacked
    matmul weights); the prefix is padded (masked) to a multiple of 16 tokens so prompts of any length share a
    graph.  Batches of 2+ run eager (compiling each batch size would stall serving for tens of seconds).
    Same actions up to float rounding (tested to 1e-5).
  * ``quantize="int8"``: ``torch.ao`` dynamic quantization of the ``nn.Linear`` layers (int8 weights, activations
    quantized per call) of the expert copies and, when the checkpoint has no LoRA adapters, of the backbone's
    language model.  Actions move by a stated tolerance (benchmarks/inference_latency.py prints it).  Requests
    that need gradients through the expert (real-time chunking guidance) run an fp32 copy of it.

Both are for serving only: the weights are no longer trainable parameters afterwards.
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
QUANTIZE_CHOICES = ("none", "int8")


@dataclass(frozen=True)
class SpeedupConfig:
    compile: bool = False
    quantize: str = "none"  # "none" | "int8"
    warmup: bool = True  # run one predict at load so the first request does not pay for compilation

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"--quantize must be one of {QUANTIZE_CHOICES}, got {self.quantize!r}")

    @property
    def enabled(self) -> bool:
        return self.compile or self.quantize != "none"


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


def _int8_forward(mod: nn.Module):
    """Quantize ``mod``'s linears in place; calls that need gradients (real-time chunking's guidance takes a
    vector-Jacobian product through the expert) run an fp32 copy, since int8 linears have no autograd kernel
    (torch would backprop through them silently wrong)."""
    import copy

    import torch

    fp32 = copy.deepcopy(mod)  # held by the closure, not registered: the module's own layers are all int8
    _quantize_linears(mod)
    int8 = mod.forward

    def forward(*args, **kwargs):
        return (fp32.forward if torch.is_grad_enabled() else int8)(*args, **kwargs)

    return forward


def quantize_int8(policy) -> list[str]:
    """Dynamic int8 for the ``nn.Linear`` layers of the expert copies (+ the LM when there are no adapters)."""
    import torch

    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
    mods = expert_modules(policy)
    for mod in mods:
        mod.forward = _int8_forward(mod)
    done = [f"expert x{len(mods)}"]
    adapters = getattr(policy, "adapters", None)
    lm = getattr(policy.model.backbone, "lm", None)
    if lm is not None and not (adapters is not None and len(adapters)):
        _quantize_linears(lm)
        done.append("language model")
    return done


PREFIX_BUCKET = 16  # the prefix length is padded (masked) to a multiple of this: one graph per bucket


def _pad_prefix(prefix_kv, prefix_mask, bucket: int):
    """Pad the prefix K/V [B, h, L, d] and mask [B, L] to a multiple of ``bucket``; padded keys are masked out."""
    import torch

    pad = -prefix_mask.shape[1] % bucket
    if not pad:
        return prefix_kv, prefix_mask
    kv = [tuple(torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in pair) for pair in prefix_kv]
    return kv, torch.nn.functional.pad(prefix_mask, (0, pad), value=False)


def _compiled_forward(mod: nn.Module):
    """Batch size 1 (one robot, the latency case) runs a static-shape inductor graph with frozen weights;
    other batch sizes and anything needing gradients run the eager forward (no compile stall mid-serving)."""
    import torch

    eager = mod.forward
    compiled = torch.compile(eager, dynamic=False, options={"freezing": True})

    def forward(noisy_actions, t, state, state_mask, embodiment_id, prefix_kv, prefix_mask):
        if noisy_actions.shape[0] != 1 or torch.is_grad_enabled():
            return eager(noisy_actions, t, state, state_mask, embodiment_id, prefix_kv, prefix_mask)
        prefix_kv, prefix_mask = _pad_prefix(prefix_kv, prefix_mask, PREFIX_BUCKET)
        return compiled(noisy_actions, t, state, state_mask, embodiment_id, prefix_kv, prefix_mask)

    return forward


def compile_experts(policy) -> int:
    """Give each expert module a compiled batch-1 ``forward`` (see ``_compiled_forward``); returns how many."""
    mods = expert_modules(policy)
    for mod in mods:
        if not getattr(mod, "_vla_compiled", False):
            mod.forward = _compiled_forward(mod)
            mod._vla_compiled = True
    return len(mods)


def blank_observation(policy) -> dict:
    """A grey observation of the default embodiment at the model's image size (for warm-up)."""
    import numpy as np

    spec = policy.spec()
    h, w = policy.config.image_size
    return {"images": {c: np.full((h, w, 3), 128, np.uint8) for c in spec.cameras},
            "state": np.zeros(spec.state_dim, np.float32), "prompt": "warm up"}


def apply_speedups(policy, cfg: SpeedupConfig, warmup_observation=None) -> dict:
    """Quantize then compile ``policy`` in place (CPU serving); returns what was done and the warm-up time."""
    report: dict = {"compile": cfg.compile, "quantize": cfg.quantize}
    if not cfg.enabled:
        return report
    if policy.model.device.type != "cpu" and cfg.quantize != "none":
        raise ValueError(f"--quantize int8 is for CPU serving (dynamic int8 kernels); the model is on "
                         f"{policy.model.device}")
    if cfg.quantize == "int8":
        report["quantized"] = quantize_int8(policy)
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
