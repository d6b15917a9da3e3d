"""The training loop on ``accelerate``: AdamW, warmup + cosine, grad clip/accumulation, bf16 autocast
on GPU, optional EMA, atomic checkpoints with exact resume, LoRA per embodiment.

Determinism: every micro-batch draws its noise/time (and, with ``cfg.augment``, its image augmentation:
:mod:`data_pipelines.augment`, applied here and nowhere else) from seeds derived from (seed, step, global
micro-batch index), and every process reads the same global batch from the pipeline and keeps its
own slice, so N processes x batch B give the per-step loss of 1 process x B with N accumulation
steps, and a resumed run repeats the uninterrupted one exactly.

The pieces: :mod:`finetune.run` (setup, resume, checkpoint writer), :mod:`finetune.params` (what trains,
AdamW), :mod:`finetune.schedule`, :mod:`finetune.ema`, :mod:`finetune.budget` (wall-time budget),
:mod:`finetune.train_log` (losses.jsonl, tensorboard, progress, loss.png).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from data_pipelines.augment import augment_batch, batch_generator
from finetune.budget import TimeBudget
from finetune.config import TrainConfig
from finetune.params import count_params, setup_trainable  # noqa: F401  (public here since the first release)
from finetune.run import Run, setup_run
from finetune.schedule import lr_lambda  # noqa: F401
from finetune.train_log import TrainLog


@dataclass
class TrainResult:
    policy: Any
    out_dir: Path
    policy_dir: Path
    step: int
    losses: list[float] = field(default_factory=list)
    samples_per_second: float = 0.0
    seconds: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    resumed_from: int = 0


def micro_seed(seed: int, step: int, micro: int) -> int:
    return (seed * 1_000_003 + step * 1009 + micro) % (2**63 - 1)


def train_step(run: Run, step: int) -> float:
    """One optimizer step on the next global batch (this rank's micro-batches, each with its derived seed):
    accumulate, clip, AdamW, schedule, EMA. Returns the loss averaged over ranks."""
    cfg, acc = run.cfg, run.acc
    world, rank = acc.num_processes, acc.process_index
    micro = run.next_global_batch()
    total_loss = torch.zeros((), device=acc.device)
    for a in range(cfg.grad_accum):
        idx = a * world + rank
        batch = run.collate(micro[idx], f"step {step}, micro {idx}")
        if cfg.augment is not None:  # train-only image augmentation, seeded like the noise below
            batch = augment_batch(batch, cfg.augment, batch_generator(cfg.seed, step, idx))
        seed = micro_seed(cfg.seed, step, idx)
        torch.manual_seed(seed)
        gen = torch.Generator(device=acc.device).manual_seed(seed)
        sync = acc.no_sync(run.loss_module) if a < cfg.grad_accum - 1 else nullcontext()
        with sync, acc.autocast():
            loss = run.loss_module(batch, gen) / cfg.grad_accum
            acc.backward(loss)
        total_loss += loss.detach().float()
    if cfg.grad_clip:
        acc.clip_grad_norm_(run.params, cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update()
    return float(acc.reduce(total_loss, reduction="mean").item())


def validate(run: Run, val_hook: Callable[[Any, int], dict[str, float]], step: int, log: TrainLog,
             say: Callable[[str], None]) -> None:
    """``val_hook(policy, step)`` on the weights the export would carry (EMA when on)."""
    run.policy.model.eval()
    with run.averaged():
        metrics = val_hook(run.policy, step) or {}
    run.policy.model.train()
    log.scalars("val", metrics, step)
    say(f"[finetune] step {step} validation: {metrics}")


def _flush_denormals_while_training(fn):
    """Undo ``set_flush_denormal(True)`` after training so the rest of the process keeps IEEE floats."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_flush_denormal(False)

    return wrapper


def enable_feature_caches(policy, max_mb: float) -> list[tuple[str, Any]]:
    """Turn on every frozen image encoder's per-frame feature cache (``max_mb`` each); [(module name, cache)]."""
    if not max_mb:
        return []
    encoders = [(n, m) for n, m in policy.model.named_modules() if hasattr(m, "enable_feature_cache")]
    if not encoders:
        raise ValueError("feature cache: the model has no cacheable image encoder (use a timm image encoder with "
                         "image_freeze all or stages:K)")
    for _, m in encoders:
        m.enable_feature_cache(max_mb)
    return [(n, m.feature_cache) for n, m in encoders]


@_flush_denormals_while_training
def train(policy, data, cfg: TrainConfig, out_dir: str | os.PathLike, *, embodiment: str | None = None,
          resume: bool = True, val_hook: Callable[[Any, int], dict[str, float]] | None = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Fine-tune ``policy`` (a VLAPolicy) on ``data`` (a ``PipelineConfig``) into ``out_dir``.

    ``embodiment``: the name the data's (single) embodiment is trained as (default: its own name).
    With ``resume`` and a checkpoint in ``out_dir/checkpoints``, training continues from it exactly
    (to a new ``cfg.steps`` if that changed; other data/batch settings are refused).
    The final policy is written to ``out_dir/policy`` (serve it with ``vla serve --checkpoint``).
    """
    out = Path(out_dir)
    run = setup_run(policy, data, cfg, out, embodiment=embodiment, resume=resume, log=log)
    say = log if run.main else (lambda _m: None)
    start = step = run.resume.step
    tlog = TrainLog(out, cfg, run.main, start, run.schedule.total, run.global_batch)
    budget = TimeBudget(cfg, run.acc, start, say)
    caches = enable_feature_caches(run.policy, cfg.feature_cache_mb)
    stopped_early = False
    run.loss_module.train()
    try:
        while step < run.schedule.total:
            loss = train_step(run, step)
            step += 1
            now = time.perf_counter()
            total = budget.refit(step, now)
            if total is not None:
                run.schedule.total = tlog.bar.total = total
            tlog.step(step, loss, run.scheduler.get_last_lr()[0], run.schedule.total, now)
            if val_hook is not None and cfg.val_every and step % cfg.val_every == 0 and run.main:
                validate(run, val_hook, step, tlog, say)
            if step % cfg.save_every == 0 and step < run.schedule.total:
                run.save_checkpoint(step)
            if budget.spent():
                say(f"[finetune] time budget {cfg.max_seconds:.0f} s reached at step {step}; stopping")
                stopped_early = True
                break
    finally:
        tlog.close()
    seconds = budget.elapsed()
    for name, cache in caches:
        say(f"[finetune] feature cache {name}: {cache.summary()}")
    run.save_checkpoint(step)
    policy_dir = run.export_policy()
    if run.main:
        tlog.finish(out)
    run.acc.wait_for_everyone()
    result = TrainResult(policy=run.policy, out_dir=out, policy_dir=policy_dir, step=step, losses=tlog.losses,
                         samples_per_second=(step - start) * run.global_batch / max(seconds, 1e-9), seconds=seconds,
                         trainable_params=run.trainable, total_params=run.total_params, resumed_from=start)
    say(f"[finetune] {step - start} steps in {seconds:.0f} s ({result.samples_per_second:.1f} samples/s)"
        f"{' (stopped early)' if stopped_early else ''}; policy: {policy_dir}")
    return result
