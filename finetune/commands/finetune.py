"""``vla finetune``: fine-tune a base (embedded | hf:<id> | checkpoint) on datasets for one embodiment."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default="embedded",
                        help="'embedded' (default), 'hf:<hub id or local path>', or a checkpoint directory")
    parser.add_argument("--data", nargs="+", action="extend", default=None, metavar="DIR[:WEIGHT]",
                        help="RLDS/TFDS or LeRobot dataset directories, a mixture when several (sampling weight "
                             "after ':', default 1), e.g. --data lift/1.0.0:2 door/1.0.0")
    parser.add_argument("--data-mix", default=None, metavar="NAME",
                        help="a named OXE mixture with its published weights instead of --data, e.g. "
                             "openvla/oxe_magic_soup or octo/oxe_magic_soup (vla stats --list shows them); members "
                             "are looked up under --data-dir (local or gs://...) by their TFDS names; --cameras is "
                             "then a preference list (default primary,wrist)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="where --data-mix members live")
    parser.add_argument("--allow-missing", action="store_true",
                        help="--data-mix: skip (and list) member datasets not found under --data-dir")
    parser.add_argument("--mapping", nargs="+", action="extend", default=None, metavar="FILE",
                        help="key mapping file (JSON/YAML) for data that is neither in the OXE registry nor written "
                             "by vla collect: one for every --data entry, or one per entry in the same order "
                             "('-' = none for that entry)")
    parser.add_argument("--cameras", nargs="+", action="extend", default=None, metavar="CAM[,CAM...]",
                        help="standardized camera names to train on, in order (e.g. primary,wrist to fit a model's "
                             "max_cameras): one list for every --data entry, or one per entry ('-' = all)")
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
    parser.add_argument("--image-encoder", default=None, metavar="conv|timm:NAME",
                        help="image encoder of a new embedded model: conv (from scratch) or any timm model, e.g. "
                             "timm:efficientnet_lite0 (ImageNet weights from the pip package by default)")
    parser.add_argument("--image-weights", default=None, metavar="PATH",
                        help="timm encoder weights: a .pth/.safetensors file or a directory holding one; 'none' = "
                             "random init (default: the offline ImageNet file for efficientnet_lite0)")
    parser.add_argument("--image-stage", type=int, default=None, metavar="N",
                        help="timm encoder: cut after feature stage N (later stages are not built)")
    parser.add_argument("--image-freeze", default=None, metavar="none|all|stages:K",
                        help="timm encoder: freeze nothing, the whole trunk, or the stem + stages 0..K")
    parser.add_argument("--image-film", action="store_const", const=True, default=None,
                        help="condition the image features on the instruction (FiLM, RT-1 style), so the policy can "
                             "find the object the instruction names; new embedded models only")
    parser.add_argument("--feature-cache-mb", type=float, default=0.0, metavar="MB",
                        help="timm encoder with frozen layers: memoize their output per frame (up to MB per process), "
                             "so after the first epoch a frozen trunk costs about nothing; only pays with --augment "
                             "none (augmented frames are all new); the log reports its hit rate. Default 0 = off")
    parser.add_argument("--augment", default="sample", choices=("sample", "none", "light", "strong"),
                        help="train-only image augmentation (never at validation or inference). sample (default): "
                             "the data pipeline's per-sample crop + colour jitter; none: off; light / strong: seeded "
                             "batched augmentation in the training step instead (data_pipelines.augment). "
                             "light: crop 85-100%% area, brightness/contrast/saturation x0.8-1.2, hue +-0.02 turn, "
                             "per-channel gain x0.9-1.1; strong: crop 70-100%%, brightness/contrast x0.6-1.4, "
                             "saturation x0.5-1.5, hue +-0.05 turn, gain x0.6-1.2, up to 3 random coloured "
                             "boxes/ellipses (p 0.4 each) and an erased box of 2-8%% area (p 0.25)")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--cache-mb", type=float, default=0.0,
                        help="keep up to this many MB of decoded episodes in RAM per loader (small datasets: "
                             "decode once instead of every epoch); default 0 = off")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over, ignoring checkpoints already in --out (by default a rerun resumes the run "
                             "there exactly, extends it to a new --steps, and refuses other data/batch settings)")
    parser.add_argument("--val-task", default=None, help="sim task for periodic in-sim validation (e.g. Lift)")
    parser.add_argument("--val-every", type=int, default=0, help="steps between validations (0 = never)")
    parser.add_argument("--val-episodes", type=int, default=4)


def _per_dataset(flag: str, values: list[str] | None, n: int) -> list[str | None]:
    """One value for every dataset, or one per dataset in order; '-' means none."""
    if not values:
        return [None] * n
    if len(values) not in (1, n):
        raise ValueError(f"{flag}: give one value for every --data entry or one per entry in the same order "
                         f"({n} --data entries, {len(values)} {flag} values; '-' = none for an entry)")
    values = values * n if len(values) == 1 else values
    return [None if v == "-" else v for v in values]


def parse_data(items: list[str], mappings: list[str] | None = None, cameras: list[str] | None = None):
    """``--data DIR[:WEIGHT]`` entries (+ ``--mapping`` / ``--cameras`` per entry) -> DatasetConfigs."""
    import os

    from data_pipelines.pipeline import DatasetConfig

    maps = _per_dataset("--mapping", mappings, len(items))
    cams = _per_dataset("--cameras", cameras, len(items))
    out = []
    for item, mapping, cam in zip(items, maps, cams):
        path, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head and "/" not in tail and not os.path.exists(item):
            path = head
            try:
                weight = float(tail)
            except ValueError:
                raise ValueError(f"--data {item}: bad weight {tail!r} after ':' (expected DIR[:WEIGHT], e.g. "
                                 f"{head}:2)") from None
            if not weight > 0:
                raise ValueError(f"--data {item}: bad weight {tail!r}: must be > 0")
        if "://" not in path and not os.path.exists(path):  # remote (gs://...) data is checked when opened
            raise FileNotFoundError(f"--data {path}: no such directory (no data found)")
        if mapping is not None and not os.path.isfile(mapping):
            raise FileNotFoundError(f"--mapping {mapping}: no such file")
        names = tuple(c for c in cam.split(",") if c) if cam is not None else None
        out.append(DatasetConfig(path=path, weight=weight, mapping=mapping, cameras=names or None))
    return tuple(out)


def _datasets(args: argparse.Namespace):
    """DatasetConfigs from ``--data`` entries or a named ``--data-mix`` under ``--data-dir``."""
    mix = getattr(args, "data_mix", None)
    if bool(args.data) == bool(mix):
        raise ValueError("give either --data DIR[:WEIGHT] ... or --data-mix NAME --data-dir DIR")
    if not mix:
        return parse_data(args.data, args.mapping, args.cameras)
    if not args.data_dir or args.mapping:
        raise ValueError(f"--data-mix {mix}: needs --data-dir DIR (and takes no --mapping)")
    from data_pipelines.oxe.mixtures import dataset_configs

    cams = tuple(c for v in args.cameras or () for c in v.split(",") if c) or None
    full, datasets = dataset_configs(mix, args.data_dir, allow_missing=args.allow_missing, cameras=cams)
    print(f"--data-mix {full}: {len(datasets)} datasets: "
          + ", ".join(f"{d.name}:{d.weight:g}" for d in datasets))
    return datasets


def _embodiments(data, datasets) -> dict:
    """The data's embodiments (opens every dataset); unregistered data gets a hint naming ``--mapping``."""
    from data_pipelines.errors import UnknownDatasetError
    from data_pipelines.pipeline import Pipeline

    try:
        specs = Pipeline(data).embodiments
    except StopIteration:
        specs = {}
    except UnknownDatasetError as e:
        if "--mapping" in str(e):
            raise
        raise UnknownDatasetError(f"{e} (vla finetune: --mapping FILE, one per --data entry)") from e
    if not specs:
        raise ValueError(f"--data {' '.join(d.path for d in datasets)}: no data found")
    return specs


IMAGE_FLAGS = {"image_encoder": "--image-encoder", "image_weights": "--image-weights", "image_stage": "--image-stage",
               "image_freeze": "--image-freeze", "image_film": "--image-film"}
TIMM_ONLY_FLAGS = ("image_weights", "image_stage", "image_freeze")


def _image_flags(args: argparse.Namespace) -> dict:
    return {field: getattr(args, field, None) for field in IMAGE_FLAGS if getattr(args, field, None) is not None}


def _with_image_encoder(cfg, args: argparse.Namespace):
    """The --image-* flags applied to a new model's backbone config (validated by VLAConfig)."""
    import dataclasses

    changes = _image_flags(args)
    if not changes:
        return cfg
    if cfg.backbone.kind != "embedded":
        raise ValueError(f"{', '.join(IMAGE_FLAGS[f] for f in changes)}: only for the embedded backbone "
                         "(--base embedded), not an hf: VLM")
    timm_only = [IMAGE_FLAGS[f] for f in changes if f in TIMM_ONLY_FLAGS]
    if timm_only and "image_encoder" not in changes and cfg.backbone.image_encoder == "conv":
        raise ValueError(f"{', '.join(timm_only)}: need --image-encoder timm:<name>")
    try:
        return cfg.replace(backbone=dataclasses.replace(cfg.backbone, **changes))
    except ValueError as e:
        raise ValueError(f"--image-encoder/--image-*: {e}") from e


def build(args: argparse.Namespace):
    """(policy, PipelineConfig, TrainConfig) from the command line."""
    import dataclasses

    from data_pipelines.augment import preset
    from data_pipelines.pipeline import PipelineConfig
    from finetune.config import LoraSettings, TrainConfig
    from finetune.recipes import model_config, parse_base
    from vla.policy import VLAPolicy

    kind, target = parse_base(args.base)
    datasets = _datasets(args)
    size = (args.image_size, args.image_size) if args.image_size else None
    if kind == "checkpoint":
        if _image_flags(args):
            raise ValueError(f"{', '.join(IMAGE_FLAGS[f] for f in _image_flags(args))}: a checkpoint keeps its image "
                             f"encoder ({target}); these flags are for a new model (--base embedded)")
        policy = VLAPolicy.from_pretrained(target)
        cfg = policy.config
        if size and size != tuple(cfg.image_size):
            raise ValueError(f"--image-size {args.image_size}: the checkpoint {target} sees {tuple(cfg.image_size)} "
                             "images (drop --image-size to train at its size)")
    else:
        cfg = _with_image_encoder(model_config(kind, target, args.preset), args)
        cfg = cfg.replace(image_size=size) if size else cfg
    batch_augment = preset(args.augment) if args.augment != "sample" else None
    sample_augment = {} if args.augment == "sample" else {"augment": None}  # one augmentation stage, not two
    data = PipelineConfig.for_model(cfg, datasets, seed=args.seed, cache_mb=args.cache_mb,
                                    balance_weights=bool(getattr(args, "data_mix", None)), **sample_augment)
    specs = _embodiments(data, datasets)
    for spec in specs.values():
        if len(spec.cameras) > cfg.max_cameras:
            cams = ", ".join(spec.cameras)
            raise ValueError(f"--data: embodiment {spec.name!r} has {len(spec.cameras)} cameras ({cams})"
                             f" > the model's max_cameras {cfg.max_cameras}; choose which to train on with --cameras "
                             f"(e.g. --cameras {','.join(spec.cameras[:cfg.max_cameras])})")
    if kind != "checkpoint":
        spec = next(iter(specs.values()))
        if args.embodiment:
            spec = dataclasses.replace(spec, name=args.embodiment)
        policy = VLAPolicy.create(cfg, [spec], seed=args.seed)
    new_embodiment = (args.embodiment or next(iter(specs))) not in policy.embodiments
    mode = args.mode
    if mode == "auto":
        mode = "lora" if kind == "checkpoint" and new_embodiment else "full"
    lora = None
    if mode == "lora":
        lora = LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha,
                            target_modules=tuple(args.lora_targets) if args.lora_targets else None)
    tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                     warmup_steps=args.warmup, grad_clip=args.grad_clip, ema_decay=args.ema, seed=args.seed,
                     save_every=args.save_every, keep_last=args.keep_last, num_workers=args.num_workers,
                     freeze=tuple(args.freeze), lora=lora, val_every=args.val_every if args.val_task else 0,
                     max_seconds=args.max_minutes * 60 if args.max_minutes else None, augment=batch_augment,
                     feature_cache_mb=args.feature_cache_mb)
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
    resumed = f", resumed at step {res.resumed_from}" if res.resumed_from else ""
    print(f"trained {res.step} steps{resumed} ({res.samples_per_second:.1f} samples/s); final loss "
          f"{res.losses[-1] if res.losses else float('nan'):.4f}")
    print(f"policy: {res.policy_dir}   loss curve: {res.out_dir / 'loss.png'}   "
          f"tensorboard: {res.out_dir / 'tensorboard'}")
    print(f"serve it: vla serve --checkpoint {res.policy_dir}")
    return 0
