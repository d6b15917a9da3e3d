"""The training loop on ``accelerate``: AdamW, warmup + cosine, grad clip/accumulation, bf16 autocast
on GPU, optional EMA, atomic checkpoints with exact resume, LoRA per embodiment.

Determinism: every micro-batch draws its noise/time from a seed derived from (seed, step, global
micro-batch index), and every process reads the same global batch from the pipeline and keeps its
own slice, so N processes x batch B give the per-step loss of 1 process x B with N accumulation
steps, and a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from finetune.checkpoint import latest_checkpoint, load_training_state, rng_state, save_checkpoint, set_rng_state
from finetune.config import TrainConfig


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


class _LossModule(nn.Module):
    """What DDP wraps: forward = the model's training loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.compute_loss(batch, generator)


def lr_lambda(cfg: TrainConfig, total: list[int] | None = None) -> Callable[[int], float]:
    """Linear warmup then cosine to ``min_lr_ratio``; ``total`` (a 1-list) may change the length later."""
    total = total if total is not None else [cfg.steps]

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, total[0] - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def count_params(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def setup_trainable(policy, cfg: TrainConfig, embodiment: str) -> list[nn.Parameter]:
    """Set requires_grad for full or LoRA fine-tuning; returns the parameters to optimize."""
    model = policy.model
    if cfg.lora is None:
        if policy.adapters is not None and len(policy.adapters):
            policy.adapters.activate(None)
        bcfg = policy.config.backbone
        for name, p in model.named_parameters():
            frozen = any(name.startswith(f) for f in cfg.freeze) or "lora_" in name
            if name.startswith("backbone.lm.") and bcfg.freeze_lm:
                frozen = True
            if bcfg.freeze_lm_embeddings and "embeddings.word_embeddings" in name:
                frozen = True
            p.requires_grad_(not frozen)
        return [p for p in model.parameters() if p.requires_grad]
    from vla.adapters import AdapterSet

    if policy.adapters is None:
        policy.adapters = AdapterSet(model)
    if embodiment not in policy.adapters:
        lc = cfg.lora
        policy.adapters.add(embodiment, lc.rank, lc.alpha, lc.dropout, lc.target_modules, lc.full_modules)
    model.requires_grad_(False)
    for mods in policy.adapters.full.values():
        mods_params = [p for m in mods.values() for p in m.parameters()]
        for p in mods_params:
            p.requires_grad_(False)
    policy.adapters.activate(embodiment)
    params = policy.adapters.trainable_parameters(embodiment)
    for p in params:
        p.requires_grad_(True)
    return params


def _param_groups(model: nn.Module, params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    wanted = {id(p) for p in params}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if id(p) in wanted:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _adamw(groups: list[dict], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW, fused (one kernel for all parameters: ~6x faster steps on CPU) where the parameters allow it."""
    fusable = all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) and p.device.type in ("cpu", "cuda")
                  for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fusable or None)


def _agree(acc, values: list[float]) -> list[float]:
    """The main process's ``values`` on every process: decisions taken from wall time (stop, step budget) must
    be the same everywhere, or the processes' collectives would stop matching and hang."""
    if acc.num_processes == 1:
        return values
    from accelerate.utils import broadcast

    return broadcast(torch.tensor(values, dtype=torch.float64, device=acc.device), from_process=0).tolist()


def _micro_seed(seed: int, step: int, micro: int) -> int:
    return (seed * 1_000_003 + step * 1009 + micro) % (2**63 - 1)


def _flush_denormals_while_training(fn):
    """Undo ``set_flush_denormal(True)`` after training so the rest of the process keeps IEEE floats."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_flush_denormal(False)

    return wrapper


@_flush_denormals_while_training
def train(
    policy,
    data,
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    embodiment: str | None = None,
    resume: bool = True,
    val_hook: Callable[[Any, int], dict[str, float]] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fine-tune ``policy`` (a VLAPolicy) on ``data`` (a ``PipelineConfig``) into ``out_dir``.

    ``embodiment``: the name the data's (single) embodiment is trained as (default: its own name).
    With ``resume`` and a checkpoint in ``out_dir/checkpoints``, training continues from it exactly.
    The final policy is written to ``out_dir/policy`` (serve it with ``vla serve --checkpoint``).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs
    from data_pipelines.torch_data import PositionTracker, VLAIterableDataset, rank_slice

    out = Path(out_dir)
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() else "no"
    acc = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available(),
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if acc.device.type == "cpu":
        # denormals made AdamW steps ~10x slower on CPU; the flag is process-wide, so train() resets it on exit
        torch.set_flush_denormal(True)
    main = acc.is_main_process
    say = log if main else (lambda _m: None)

    ckpt = latest_checkpoint(out) if resume else None
    start_step, state, meta = 0, None, {}
    if ckpt is not None:
        from vla.policy import VLAPolicy

        state, meta = load_training_state(ckpt)
        policy = VLAPolicy.from_pretrained(ckpt)
        start_step = int(meta["step"])
        say(f"[finetune] resuming from {ckpt} (step {start_step})")

    data_state = {int(k): v for k, v in (meta.get("data") or {}).items()} or None
    # every rank reads the same global stream; with in-process loading each builds only its own slice's images
    sliced = acc.num_processes > 1 and cfg.num_workers == 0
    dataset = VLAIterableDataset(data, state=data_state, images_for=rank_slice(
        acc.process_index, acc.num_processes, cfg.batch_size, cfg.grad_accum) if sliced else None)
    if len(dataset.embodiments) != 1 and embodiment is not None:
        raise ValueError(f"--embodiment renames one dataset embodiment; the data has {sorted(dataset.embodiments)}")
    rename: dict[str, str] = {}
    for dname, spec in dataset.embodiments.items():
        target = embodiment or dname
        if target in policy.embodiments:
            have = policy.embodiments[target]
            if (have.action_dim, have.state_dim) != (spec.action_dim, spec.state_dim):
                raise ValueError(
                    f"dataset embodiment {dname!r} has action_dim {spec.action_dim}, state_dim {spec.state_dim}, but "
                    f"the policy's embodiment {target!r} has action_dim {have.action_dim}, state_dim {have.state_dim}")
        import dataclasses

        policy.add_embodiment(dataclasses.replace(spec, name=target))
        rename[dname] = target
    train_emb = next(iter(rename.values()))
    if cfg.lora is not None and len(rename) != 1:
        raise ValueError("LoRA fine-tuning trains one embodiment's adapter; give data of one embodiment")

    if cfg.lora is None and policy.adapters is not None and len(policy.adapters):
        say(f"[finetune] warning: full fine-tuning changes the base shared by adapters {sorted(policy.adapters.meta)}; "
            "use LoRA (--mode lora) to keep them valid")
    params = setup_trainable(policy, cfg, train_emb)
    trainable, total = count_params(policy.model)
    if cfg.lora is not None:
        trainable = sum(p.numel() for p in params)
        total = sum(p.numel() for p in policy.model.parameters())
    say(f"[finetune] parameters: {trainable:,} trainable / {total:,} total ({100 * trainable / max(total, 1):.2f} %)"
        f"{' (LoRA adapter ' + repr(train_emb) + ')' if cfg.lora else ''}")
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")

    model = policy.model
    optimizer = _adamw(_param_groups(model, params, cfg.weight_decay) if cfg.lora is None else
                       [{"params": params, "weight_decay": cfg.weight_decay}], cfg)
    total_steps = [int(meta.get("total_steps", cfg.steps))]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))
    loss_module = _LossModule(model)
    loss_module, optimizer = acc.prepare(loss_module, optimizer)
    ema: dict[str, torch.Tensor] | None = None
    named_trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if cfg.ema_decay:
        ema = {n: p.detach().clone() for n, p in named_trainable}
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        if ema is not None and state.get("ema"):
            ema = {n: t.to(acc.device) for n, t in state["ema"].items()}
    if ema is not None:  # one fused lerp per step over all EMA tensors
        ema_values = [ema[n] for n, _ in named_trainable]
        live_values = [p.detach() for _, p in named_trainable]

    world, rank = acc.num_processes, acc.process_index
    loader = dataset.dataloader(cfg.batch_size, num_workers=cfg.num_workers)
    tracker = PositionTracker()
    if data_state:
        tracker.positions = dict(data_state)
    it = iter(loader)

    writer = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"))
    loss_log = out / "losses.jsonl"
    history: list[dict] = []
    if main and loss_log.exists():  # keep the trajectory up to the resumed step
        history = [r for r in map(json.loads, loss_log.read_text().splitlines()) if r["step"] <= start_step]
        loss_log.write_text("".join(json.dumps(r) + "\n" for r in history))

    def write_policy(path: Path) -> None:
        if ema is not None:  # the saved policy carries the EMA weights
            live = {n: p.detach().clone() for n, p in named_trainable}
            with torch.no_grad():
                for n, p in named_trainable:
                    p.copy_(ema[n])
            policy.save_pretrained(path)
            with torch.no_grad():
                for n, p in named_trainable:
                    p.copy_(live[n])
        else:
            policy.save_pretrained(path)

    def checkpoint(step: int) -> Path | None:
        if not main:
            return None
        st = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
              "ema": {n: t.cpu() for n, t in ema.items()} if ema is not None else None}
        m = {"step": step, "total_steps": total_steps[0], "data": tracker.state_dict(), "embodiment": train_emb, "world_size": world,
             "num_workers": cfg.num_workers, "train_config": cfg.to_dict()}
        return save_checkpoint(out, step, write_policy, st, m, cfg.keep_last)

    from tqdm import tqdm

    bar = tqdm(total=total_steps[0], initial=start_step, desc="finetune", unit="step", disable=not (main and cfg.progress),
               dynamic_ncols=True)
    loss_module.train()
    step = start_step
    t0 = time.perf_counter()
    window_t, window_samples = t0, 0
    sps = 0.0
    global_batch = cfg.batch_size * cfg.grad_accum * world
    stopped_early = False
    try:
        fit_at = start_step + 20 if cfg.fit_steps_to_time and cfg.max_seconds else None
        while step < total_steps[0]:
            micro = []
            for _ in range(cfg.grad_accum * world):
                try:
                    samples = next(it)
                except StopIteration:
                    raise ValueError("the data ran out (train pipelines are endless: check the dataset)") from None
                tracker.update(samples)
                micro.append(samples)
            total_loss = torch.zeros((), device=acc.device)
            for a in range(cfg.grad_accum):
                idx = a * world + rank
                samples = [{**s, "embodiment": rename.get(s["embodiment"], s["embodiment"])} for s in micro[idx]]
                if any(s.get("_images_skipped") for s in samples):  # a bug, never a silent image-less batch
                    raise RuntimeError(f"rank {rank} got a batch sliced out for another rank (step {step}, micro {idx})")
                batch = policy.collate(samples)
                seed = _micro_seed(cfg.seed, step, idx)
                torch.manual_seed(seed)
                gen = torch.Generator(device=acc.device).manual_seed(seed)
                sync = acc.no_sync(loss_module) if a < cfg.grad_accum - 1 else nullcontext()
                with sync, acc.autocast():
                    loss = loss_module(batch, gen) / cfg.grad_accum
                    acc.backward(loss)
                total_loss += loss.detach().float()
            if cfg.grad_clip:
                acc.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(ema_values, live_values, 1 - cfg.ema_decay)
            step += 1
            loss_val = float(acc.reduce(total_loss, reduction="mean").item())
            lr = scheduler.get_last_lr()[0]
            window_samples += global_batch
            now = time.perf_counter()
            if step == (fit_at or 0) - 10:
                t_fit = now
            if fit_at and step >= fit_at and (step - fit_at) % 100 == 0:
                # fill the time budget at the measured rate (the cosine is stretched/shrunk to match); re-measured
                # every 100 steps since a shared machine's speed drifts
                per_step = (now - t_fit) / (10 if step == fit_at else 100)
                t_fit = now
                new_total = max(step + 1, int(step + (cfg.max_seconds - (now - t0)) / per_step))
                new_total = int(_agree(acc, [new_total])[0])  # every process must run the same number of steps
                if step == fit_at:
                    say(f"[finetune] {per_step * 1000:.0f} ms/step measured: training {new_total} steps to fill "
                        f"{cfg.max_seconds:.0f} s")
                total_steps[0] = new_total
                bar.total = new_total
            if now - window_t > 2.0 or step == total_steps[0]:
                sps = window_samples / (now - window_t)
                window_t, window_samples = now, 0
            if main:
                rec = {"step": step, "loss": loss_val, "lr": lr}
                history.append(rec)
                with loss_log.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                if writer is not None and (step % cfg.log_every == 0 or step == total_steps[0]):
                    writer.add_scalar("train/loss", loss_val, step)
                    writer.add_scalar("train/lr", lr, step)
                    writer.add_scalar("train/samples_per_second", sps, step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_val:.4f}", lr=f"{lr:.2e}", sps=f"{sps:.0f}")
            if val_hook is not None and cfg.val_every and step % cfg.val_every == 0 and main:
                model.eval()
                metrics = val_hook(policy, step) or {}
                model.train()
                for k, v in metrics.items():
                    if writer is not None:
                        writer.add_scalar(f"val/{k}", v, step)
                say(f"[finetune] step {step} validation: {metrics}")
            if step % cfg.save_every == 0 and step < total_steps[0]:
                checkpoint(step)
            if cfg.max_seconds is not None and _agree(
                    acc, [time.perf_counter() - t0 > cfg.max_seconds * (1.05 if fit_at else 1)])[0]:
                say(f"[finetune] time budget {cfg.max_seconds:.0f} s reached at step {step}; stopping")
                stopped_early = True
                break
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    checkpoint(step)
    policy_dir = out / "policy"
    if main:
        model.eval()
        write_policy(policy_dir)
        if writer is not None:
            writer.close()
        _plot_losses(history, out / "loss.png")
    acc.wait_for_everyone()
    done = step - start_step
    result = TrainResult(policy, out, policy_dir, step, [r["loss"] for r in history],
                         done * global_batch / max(seconds, 1e-9), seconds, trainable, total, start_step)
    say(f"[finetune] {done} steps in {seconds:.0f} s ({result.samples_per_second:.1f} samples/s)"
        f"{' (stopped early)' if stopped_early else ''}; policy: {policy_dir}")
    return result


def _plot_losses(history: list[dict], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    losses = [r["loss"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="loss")
    k = max(1, len(losses) // 50)
    if k > 1:
        smooth = [sum(losses[max(0, i - k):i + 1]) / len(losses[max(0, i - k):i + 1]) for i in range(len(losses))]
        ax.plot(steps, smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
