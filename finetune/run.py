"""A run's setup: the accelerator, resume from the latest checkpoint (refusing other data/batch settings),
the data stream, embodiment renaming, what trains, optimizer/schedule/EMA, and the checkpoint writer."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetune.checkpoint import latest_checkpoint, load_training_state, rng_state, save_checkpoint, set_rng_state
from finetune.config import TrainConfig
from finetune.ema import EMA
from finetune.params import adamw, count_params, param_groups, setup_trainable
from finetune.schedule import WarmupCosine
from finetune.settings import check_same_settings, run_settings


class LossModule(nn.Module):
    """What DDP wraps: forward = the model's training loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.compute_loss(batch, generator)


@dataclass
class Resume:
    """Where a run starts: step 0, or a checkpoint's step, training state and meta."""

    step: int = 0
    checkpoint: Path | None = None
    state: dict[str, Any] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def data_state(self) -> dict[int, dict] | None:
        return {int(k): v for k, v in (self.meta.get("data") or {}).items()} or None

    def total_steps(self, cfg: TrainConfig) -> int:
        """A new ``cfg.steps`` extends (or ends) the run; the same one keeps the run's (perhaps time-fitted) total,
        except that a finished run with a time budget to fill gets a new budget (refit as at the start)."""
        if self.checkpoint is None or cfg.steps != self.meta.get("train_config", {}).get("steps"):
            return cfg.steps
        total = int(self.meta.get("total_steps", cfg.steps))
        if cfg.fit_steps_to_time and cfg.max_seconds and self.step >= total:
            return max(cfg.steps, self.step + 21)
        return total


@dataclass
class Run:
    """Everything the loop needs (built by :func:`setup_run`)."""

    acc: Any  # accelerate.Accelerator
    cfg: TrainConfig
    out: Path
    policy: Any
    loss_module: nn.Module
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: EMA | None
    batches: Any  # iterator over the loader: lists of samples
    tracker: Any  # data_pipelines.torch_data.PositionTracker
    rename: dict[str, str]
    embodiment: str
    resume: Resume
    settings: dict[str, Any]
    trainable: int
    total_params: int

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.acc.num_processes

    def next_global_batch(self) -> list[list[dict]]:
        """The next ``grad_accum x world`` micro-batches of the shared stream (each rank uses its own)."""
        micro = []
        for _ in range(self.cfg.grad_accum * self.acc.num_processes):
            try:
                samples = next(self.batches)
            except StopIteration:
                raise ValueError("the data ran out (train pipelines are endless: check the dataset)") from None
            self.tracker.update(samples)
            micro.append(samples)
        return micro

    def collate(self, samples: list[dict], where: str) -> dict:
        samples = [{**s, "embodiment": self.rename.get(s["embodiment"], s["embodiment"])} for s in samples]
        if any(s.get("_images_skipped") for s in samples):  # a bug, never a silent image-less batch
            raise RuntimeError(f"rank {self.acc.process_index} got a batch sliced out for another rank ({where})")
        return self.policy.collate(samples)

    def averaged(self):
        """The EMA weights in the model inside the block (no-op without EMA)."""
        return self.ema.swapped_in() if self.ema is not None else nullcontext()

    def save_checkpoint(self, step: int) -> Path | None:
        """``checkpoints/step_N``: the live weights (to resume from) + training state incl. the EMA."""
        if not self.main:
            return None
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": rng_state(), "ema": self.ema.state_dict() if self.ema is not None else None}
        meta = {"step": step, "total_steps": self.schedule.total, "data": self.tracker.state_dict(),
                "embodiment": self.embodiment, "world_size": self.acc.num_processes,
                "num_workers": self.cfg.num_workers, "train_config": self.cfg.to_dict(), "settings": self.settings}
        return save_checkpoint(self.out, step, self.policy.save_pretrained, state, meta, self.cfg.keep_last)

    def export_policy(self) -> Path:
        """``policy/``: the servable checkpoint. Training is over: with EMA on, the averaged weights replace the live
        ones in the policy too (the returned policy is the exported one, on every rank)."""
        path = self.out / "policy"
        if self.ema is not None:
            self.ema.copy_to_model()
        self.policy.model.eval()
        if self.main:
            self.policy.save_pretrained(path)
        return path


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() else "no"
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)  # decided in setup_run (see _probe_unused)
    acc = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])
    if acc.device.type == "cpu":
        # denormals made AdamW steps ~10x slower on CPU; the flag is process-wide, so train() resets it on exit
        torch.set_flush_denormal(True)
    return acc, ddp


def needs_unused_search(model: nn.Module, batch: dict, mixture: bool) -> bool:
    """Whether DDP must search for unused parameters every step (``find_unused_parameters``; it warns when set
    needlessly): a mixture of embodiments may leave some unused per batch; otherwise one probing forward/backward
    (forked RNG, eval mode: no state changes, gradients dropped) finds whether any trained parameter goes unused."""
    if mixture:
        return True
    trained = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        model.eval()
        model.compute_loss(batch, torch.Generator(device=batch_device(batch)).manual_seed(0)).backward()
    unused = any(p.grad is None for p in trained)
    for p in trained:
        p.grad = None
    model.train(was_training)
    return unused


def batch_device(batch: dict) -> torch.device:
    return next((v.device for v in batch.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))


def find_resume(out: Path, resume: bool, settings: dict[str, Any]) -> Resume:
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is None:
        return Resume()
    state, meta = load_training_state(ckpt)
    check_same_settings(ckpt, meta.get("settings"), settings)
    return Resume(step=int(meta["step"]), checkpoint=ckpt, state=state, meta=meta)


def register_embodiments(policy, embodiments: dict, embodiment: str | None) -> dict[str, str]:
    """Add the data's embodiments to the policy (``embodiment`` renames a single one); dataset -> trained name."""
    if len(embodiments) != 1 and embodiment is not None:
        raise ValueError(f"--embodiment renames one dataset embodiment; the data has {sorted(embodiments)}")
    rename: dict[str, str] = {}
    for dname, spec in embodiments.items():
        target = embodiment or dname
        if target in policy.embodiments:
            have = policy.embodiments[target]
            if (have.action_dim, have.state_dim) != (spec.action_dim, spec.state_dim):
                raise ValueError(
                    f"dataset embodiment {dname!r} has action_dim {spec.action_dim}, state_dim {spec.state_dim}, but "
                    f"the policy's embodiment {target!r} has action_dim {have.action_dim}, state_dim {have.state_dim}")
        policy.add_embodiment(dataclasses.replace(spec, name=target))
        rename[dname] = target
    return rename


def _trainable(policy, cfg: TrainConfig, train_emb: str, n_embodiments: int,
               say: Callable[[str], None]) -> tuple[list[nn.Parameter], int, int]:
    """Freeze for full or LoRA fine-tuning; (parameters to optimize, trainable count, total count)."""
    if cfg.lora is not None and n_embodiments != 1:
        raise ValueError("LoRA fine-tuning trains one embodiment's adapter; give data of one embodiment")
    if cfg.lora is None and policy.adapters is not None and len(policy.adapters):
        say(f"[finetune] warning: full fine-tuning changes the base shared by adapters {sorted(policy.adapters.meta)}; "
            "use LoRA (--mode lora) to keep them valid")
    params = setup_trainable(policy, cfg, train_emb)
    trainable, total = count_params(policy.model)
    if cfg.lora is not None:
        trainable = sum(p.numel() for p in params)
    say(f"[finetune] parameters: {trainable:,} trainable / {total:,} total ({100 * trainable / max(total, 1):.2f} %)"
        f"{' (LoRA adapter ' + repr(train_emb) + ')' if cfg.lora else ''}")
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    return params, trainable, total


def setup_run(policy, data, cfg: TrainConfig, out: Path, *, embodiment: str | None, resume: bool,
              log: Callable[[str], None]) -> Run:
    """Build the :class:`Run` of :func:`finetune.trainer.train` (resuming from ``out``'s latest checkpoint)."""
    from data_pipelines.torch_data import PositionTracker, VLAIterableDataset, rank_slice

    acc, ddp = make_accelerator(cfg)
    world, rank = acc.num_processes, acc.process_index
    say = log if acc.is_main_process else (lambda _m: None)
    settings = run_settings(data, cfg, world, embodiment)
    res = find_resume(out, resume, settings)
    if res.checkpoint is not None:
        from vla.policy import VLAPolicy

        policy = VLAPolicy.from_pretrained(res.checkpoint)
        say(f"[finetune] resuming from {res.checkpoint} (step {res.step})")
    data.check_model(policy.config)  # the frames it trains on are the frames predict() gives it
    # every rank reads the same global stream; with in-process loading each builds only its own slice's images
    sliced = world > 1 and cfg.num_workers == 0
    dataset = VLAIterableDataset(data, state=res.data_state, images_for=rank_slice(
        rank, world, cfg.batch_size, cfg.grad_accum) if sliced else None)
    rename = register_embodiments(policy, dataset.embodiments, embodiment)
    train_emb = next(iter(rename.values()))
    params, trainable, total = _trainable(policy, cfg, train_emb, len(rename), say)
    model = policy.model
    optimizer = adamw(param_groups(model, params, cfg), cfg)
    schedule = WarmupCosine(cfg, res.total_steps(cfg))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s))  # a lambda: not in its state
    if res.state is not None:  # before the loader draws its workers' seeds
        set_rng_state(res.state["rng"])
    batches = iter(dataset.dataloader(cfg.batch_size, num_workers=cfg.num_workers))
    if world > 1:  # the first global batch is read ahead (and then trained on) to probe for unused parameters
        first = [next(batches) for _ in range(cfg.grad_accum * world)]
        batches = itertools.chain(first, batches)
        probe = [{**s, "embodiment": rename.get(s["embodiment"], s["embodiment"])} for s in first[rank]]
        ddp.find_unused_parameters = needs_unused_search(model, policy.collate(probe), len(rename) > 1)
    loss_module, optimizer = acc.prepare(LossModule(model), optimizer)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    ema = EMA(trained, cfg.ema_decay) if cfg.ema_decay else None
    if res.state is not None:
        optimizer.load_state_dict(res.state["optimizer"])
        scheduler.load_state_dict(res.state["scheduler"])
        if ema is not None and res.state.get("ema"):
            ema.load_state_dict(res.state["ema"])
    tracker = PositionTracker()
    if res.data_state:
        tracker.positions = dict(res.data_state)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps({**cfg.to_dict(), "settings": settings}, indent=2))
    return Run(acc=acc, cfg=cfg, out=out, policy=policy, loss_module=loss_module, params=params, optimizer=optimizer,
               schedule=schedule, scheduler=scheduler, ema=ema, batches=batches, tracker=tracker, rename=rename,
               embodiment=train_emb, resume=res, settings=settings, trainable=trainable, total_params=total)
