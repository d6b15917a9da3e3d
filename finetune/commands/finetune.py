"""``vla finetune``: fine-tune a base (embedded | hf:<id> | checkpoint) on datasets for one embodiment."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default="embedded",
                        help="'embedded' (default), 'hf:<hub id or local path>', or a checkpoint directory")
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR[:WEIGHT]",
                        help="RLDS/TFDS or LeRobot dataset directories (mixture weights after ':')")
    parser.add_argument("--embodiment", default=None, help="embodiment name to train (default: the dataset's)")
    parser.add_argument("--out", required=True, help="output dir (checkpoints/, policy/, loss.png, tensorboard/)")
    parser.add_argument("--preset", default="default", help="model preset for a new model: default | demo | tiny")
    parser.add_argument("--mode", default="auto", choices=("auto", "full", "lora"),
                        help="auto: LoRA adapter when adding a new embodiment to a checkpoint, else full")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--ema", type=float, default=None, help="EMA decay (e.g. 0.999); off by default")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--keep-last", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--lora-targets", nargs="*", default=None, help="LM module names (default: the backbone's)")
    parser.add_argument("--freeze", nargs="*", default=[], help="parameter-name prefixes to freeze (full mode)")
    parser.add_argument("--image-size", type=int, default=None, help="square image size (default: the model's)")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--cache-mb", type=float, default=0.0,
                        help="keep up to this many MB of decoded episodes in RAM per loader (small datasets: "
                             "decode once instead of every epoch); default 0 = off")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")
    parser.add_argument("--val-task", default=None, help="sim task for periodic in-sim validation (e.g. Lift)")
    parser.add_argument("--val-every", type=int, default=0, help="steps between validations (0 = never)")
    parser.add_argument("--val-episodes", type=int, default=4)


def parse_data(items: list[str]):
    import os

    from data_pipelines.pipeline import DatasetConfig

    out = []
    for item in items:
        path, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head and not os.path.exists(item):
            try:
                path, weight = head, float(tail)
            except ValueError:
                pass
        if not os.path.exists(path):
            raise FileNotFoundError(f"--data {path}: no such directory (no data found)")
        out.append(DatasetConfig(path=path, weight=weight))
    return tuple(out)


def build(args: argparse.Namespace):
    """(policy, PipelineConfig, TrainConfig) from the command line."""
    import dataclasses

    from data_pipelines.pipeline import Pipeline, PipelineConfig
    from finetune.config import LoraSettings, TrainConfig
    from finetune.recipes import model_config, parse_base
    from vla.policy import VLAPolicy

    kind, target = parse_base(args.base)
    datasets = parse_data(args.data)
    if kind == "checkpoint":
        policy = VLAPolicy.from_pretrained(target)
        cfg = policy.config
    else:
        cfg = model_config(kind, target, args.preset)
    size = (args.image_size, args.image_size) if args.image_size else tuple(cfg.image_size)
    data = PipelineConfig(datasets=datasets, horizon=cfg.action_horizon, image_size=size, seed=args.seed,
                          cache_mb=args.cache_mb)
    try:
        specs = Pipeline(data).embodiments
    except StopIteration:
        raise ValueError(f"--data {args.data}: no data found") from None
    if not specs:
        raise ValueError(f"--data {args.data}: no data found")
    if kind != "checkpoint":
        spec = next(iter(specs.values()))
        if args.embodiment:
            spec = dataclasses.replace(spec, name=args.embodiment)
        policy = VLAPolicy.create(cfg, [spec], seed=args.seed)
    new_embodiment = (args.embodiment or next(iter(specs))) not in policy.embodiments
    mode = args.mode
    if mode == "auto":
        mode = "lora" if kind == "checkpoint" and new_embodiment else "full"
    lora = LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha,
                        target_modules=tuple(args.lora_targets) if args.lora_targets else None) if mode == "lora" else None
    tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                     warmup_steps=args.warmup, grad_clip=args.grad_clip, ema_decay=args.ema, seed=args.seed,
                     save_every=args.save_every, keep_last=args.keep_last, num_workers=args.num_workers,
                     freeze=tuple(args.freeze), lora=lora, val_every=args.val_every if args.val_task else 0,
                     max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    return policy, data, tc


def main(args: argparse.Namespace) -> int:
    import torch

    from finetune.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    policy, data, tc = build(args)
    hook = None
    if args.val_task and args.val_every:
        from finetune.validation import sim_validation_hook

        hook = sim_validation_hook(args.val_task, args.val_episodes, image_size=policy.config.image_size[0])
    res = train(policy, data, tc, args.out, embodiment=args.embodiment, resume=not args.no_resume, val_hook=hook)
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # accelerate launch: the main process reports
        return 0
    print(f"trained {res.step} steps ({res.samples_per_second:.1f} samples/s); final loss "
          f"{res.losses[-1] if res.losses else float('nan'):.4f}")
    print(f"policy: {res.policy_dir}   loss curve: {res.out_dir / 'loss.png'}   tensorboard: {res.out_dir / 'tensorboard'}")
    print(f"serve it: vla serve --checkpoint {res.policy_dir}")
    return 0
