"""``vla demo``: collect scripted Lift demos (nominal ones, and ones with nuisance factors randomized per episode)
-> fine-tune the embedded policy -> evaluate nominal and perturbation factors -> report (table, PNG, mp4s, which
factors training saw) and how to serve the checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

DEMO_EVAL_FACTORS = ("lighting@2", "table_color@2", "object_color@2", "distractors@1", "distractors@2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="vla_demo", help="output directory (default ./vla_demo)")
    parser.add_argument("--task", default="Lift", help="robosuite task (default Lift)")
    parser.add_argument("--demos", type=int, default=50, help="nominal scripted demos to collect (default 50)")
    parser.add_argument("--randomized-demos", type=int, default=None, metavar="N",
                        help="demos collected beside them with the --randomize factors drawn per episode (default: "
                             "the recipe's, finetune.recipes.DEMO_RANDOMIZED_DEMOS; 0 without --randomize factors)")
    parser.add_argument("--randomized-weight", type=float, default=None, metavar="W",
                        help="sampling weight of the randomized demos vs the nominal ones' 1.0 (default: the "
                             "recipe's)")
    parser.add_argument("--train-minutes", type=float, default=15.0, help="training wall-time budget (default 15)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=50, help="nominal eval episodes (default 50)")
    parser.add_argument("--factor-episodes", type=int, default=20, help="episodes per factor (default 20)")
    parser.add_argument("--factors", nargs="*", default=list(DEMO_EVAL_FACTORS),
                        help="sim_eval factors to evaluate besides nominal (default: " + " ".join(DEMO_EVAL_FACTORS)
                        + ")")
    parser.add_argument("--randomize", nargs="+", default=None, metavar="FACTOR[@SEV]",
                        help="nuisance factors drawn per demo episode (severity 0..SEV; `none` = nominal demos; "
                             "default: the demo recipe's, finetune.recipes.DEMO_RANDOMIZE)")
    parser.add_argument("--action-noise", type=float, default=None, metavar="STD",
                        help="DART noise injection while collecting (see `vla collect --action-noise`; default: the "
                             "recipe's, finetune.recipes.DEMO_ACTION_NOISE)")
    parser.add_argument("--augment", default=None, choices=("sample", "none", "light", "strong"),
                        help="train-only image augmentation (see `vla finetune --augment`; default: the recipe's)")
    parser.add_argument("--image-encoder", default=None, metavar="conv|timm:NAME",
                        help="image encoder (default: the recipe's); timm encoders use the recipe's stage and "
                             "freezing (finetune.recipes.timm_backbone) and their packaged/random weights")
    parser.add_argument("--image-stage", type=int, default=None, metavar="K",
                        help="timm encoders: cut after feature stage K (default: the recipe's, "
                             "finetune.recipes.DEMO_IMAGE_STAGE)")
    parser.add_argument("--image-freeze", default=None, metavar="all|none|stages:K",
                        help="timm encoders: which layers stay frozen (default: the recipe's, "
                             "finetune.recipes.DEMO_IMAGE_FREEZE); frozen ones are cached per frame")
    parser.add_argument("--image-film", default=None, choices=("on", "off"),
                        help="condition the image features on the instruction (FiLM; default: the recipe's)")
    parser.add_argument("--data-dir", default=None,
                        help="where demos are collected / reused (default OUT/data); variants that collect the "
                             "same way can share one")
    parser.add_argument("--eval-max-steps", type=int, default=None,
                        help="cut eval episodes after this many control steps (default: the task's horizon); "
                             "for quick smoke runs")
    parser.add_argument("--workers", type=int, default=2, help="sim worker processes (default 2)")
    parser.add_argument("--train-processes", type=int, default=None,
                        help="data-parallel training processes (default: 2 on a machine with >= 2 cores, else 1); "
                             "--batch-size is per process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training process (default 1)")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--color-gain", type=float, default=None,
                        help="train-time per-channel color gain U(1-g, 1+g) (default: the demo recipe's)")
    parser.add_argument("--seed", type=int, default=0)


def _merge(reports: list[dict]) -> dict:
    import dataclasses
    from types import SimpleNamespace

    from sim_eval.report import summarize
    from sim_eval.rollout import EpisodeResult

    episodes = [e for r in reports for e in r["episodes"]]
    meta = dict(reports[0]["meta"])
    meta["conditions"] = [c for r in reports for c in r["meta"]["conditions"] if c != "nominal" or r is reports[0]]
    meta["episodes_per_condition"] = {c: sum(e["condition"] == c for e in episodes) for c in meta["conditions"]}
    meta["episodes"] = meta["episodes_per_condition"].get("nominal", len(episodes))  # the table's n column is exact
    meta["seconds"] = sum(r["meta"]["seconds"] for r in reports)
    # report.json episodes carry only some result fields: the rest take EpisodeResult's defaults (None / empty)
    defaults = {f.name: None if f.default is dataclasses.MISSING else f.default
                for f in dataclasses.fields(EpisodeResult)}
    summary = summarize([SimpleNamespace(**{**defaults, "error": "", **e}) for e in episodes])
    return {"meta": meta, "summary": summary, "episodes": episodes, "errors": [x for r in reports for x in r["errors"]],
            "videos": sorted(v for r in reports for v in r["videos"])}


def _recipe(args: argparse.Namespace):
    """(model config, pipeline augment, batch augment, randomize list, recipe dict for the report)."""
    from data_pipelines.augment import preset
    from finetune import recipes
    from sim_eval.factors import FACTORS
    from sim_eval.randomize import parse_randomize
    from sim_eval.tasks import task_info

    size = (args.image_size, args.image_size)
    cfg = recipes.demo_config().replace(image_size=size)
    encoder = args.image_encoder or recipes.DEMO_IMAGE_ENCODER
    if encoder != "conv":
        stage = recipes.DEMO_IMAGE_STAGE if args.image_stage is None else args.image_stage
        freeze = args.image_freeze or recipes.DEMO_IMAGE_FREEZE
        cfg = cfg.replace(backbone=recipes.timm_backbone(cfg.backbone, encoder, stage, freeze))
    elif args.image_stage is not None or args.image_freeze is not None:
        raise ValueError("--image-stage / --image-freeze apply to timm image encoders, not --image-encoder conv")
    film = recipes.DEMO_IMAGE_FILM if args.image_film is None else args.image_film == "on"
    cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, image_film=film))
    augment = args.augment or recipes.DEMO_AUGMENT
    sample_augment = recipes.demo_augment() if augment == "sample" else None
    if sample_augment is not None and args.color_gain is not None:
        sample_augment = dataclasses.replace(sample_augment, channel_gain=args.color_gain)
    randomize = list(recipes.DEMO_RANDOMIZE if args.randomize is None else args.randomize)
    if randomize == ["none"]:
        randomize = []
    randomize = [r.label for r in parse_randomize(randomize, task_info(args.task).suite)]
    seen = sorted({r.split("@")[0] for r in randomize})
    recipe = {"image_encoder": encoder, "image_film": film,
              **({"image_stage": cfg.backbone.image_stage, "image_freeze": cfg.backbone.image_freeze}
                 if encoder != "conv" else {}), "augment": augment, "randomized_in_training": randomize,
              "action_noise": recipes.DEMO_ACTION_NOISE if args.action_noise is None else args.action_noise,
              "held_out": [f for f in FACTORS if f not in seen]}
    return cfg, sample_augment, preset(augment) if augment != "sample" else None, randomize, recipe


def _demo_sets(args: argparse.Namespace, randomize: list[str]) -> list[tuple[str, int, list[str], int, float]]:
    """(dataset name, demos, randomize, first episode seed, sampling weight) of each demo set to collect: the
    nominal demos, then the randomized ones on the episode seeds after every seed the nominal set may try."""
    from finetune import recipes

    n_rand = args.randomized_demos
    if n_rand is None:
        n_rand = recipes.DEMO_RANDOMIZED_DEMOS if randomize else 0
    if n_rand < 0 or args.demos < 0 or n_rand + args.demos == 0:
        raise ValueError(f"--demos {args.demos} --randomized-demos {n_rand}: need >= 0 of each and some demos")
    if n_rand and not randomize:
        raise ValueError(f"--randomized-demos {n_rand}: there are no --randomize factors to draw")
    weight = recipes.DEMO_RANDOMIZED_WEIGHT if args.randomized_weight is None else args.randomized_weight
    if not weight > 0:
        raise ValueError(f"--randomized-weight {weight}: must be > 0")
    task = args.task.lower()
    sets = [(f"{task}_expert", args.demos, [], args.seed, 1.0)] if args.demos else []
    first = args.seed + (2 * args.demos + 10 if args.demos else 0)  # collect tries at most 2N+10 seeds
    return sets + ([(f"{task}_randomized", n_rand, randomize, first, weight)] if n_rand else [])


def _demos(args: argparse.Namespace, plan: list[tuple[str, int, list[str], int, float]]) -> list[tuple[Path, float]]:
    """Collect (or reuse) each demo set of :func:`_demo_sets`; (RLDS path, sampling weight) per set."""
    from finetune import recipes
    from sim_eval.collect import collect

    data_dir = Path(args.data_dir) if args.data_dir else Path(args.out) / "data"
    noise = recipes.DEMO_ACTION_NOISE if args.action_noise is None else args.action_noise
    out = []
    for name, n, factors, seed, weight in plan:
        existing = data_dir / name / "1.0.0"
        summary_file = existing / "collect_summary.json"
        if summary_file.exists():
            done = json.loads(summary_file.read_text())
            if (list(done.get("randomize") or []) == factors and done.get("recorded", 0) >= n
                    and done.get("first_seed") == seed and done.get("action_noise", 0.0) == noise):
                print(f"[demo] 1/4 reusing {name} demos in {existing}")
                out.append((existing, weight))
                continue
        rand = f", randomizing {' '.join(factors)} per episode" if factors else ""
        rand += f", action noise {noise:g}" if noise else ""
        print(f"[demo] 1/4 collecting {n} scripted {args.task} demos ({args.workers} workers{rand})")
        summary = collect(args.task, n, data_dir, dataset_name=name, workers=args.workers, image_size=args.image_size,
                          seed=seed, randomize=factors, overwrite=True, action_noise=noise)
        print("[demo] " + summary.line())
        out.append((Path(summary.path), weight))
    return out


def _train(args: argparse.Namespace, sets: list[tuple[Path, float]], cfg, sample_augment, batch_augment):
    import os

    from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
    from finetune import recipes
    from finetune.config import TrainConfig
    from finetune.launch import train_processes
    from vla.policy import VLAPolicy

    data = PipelineConfig(datasets=tuple(DatasetConfig(str(p), weight=w) for p, w in sets), horizon=16,
                          image_size=cfg.image_size, seed=args.seed,
                          buffer_episodes=16, augment=sample_augment,  # batches mix many demos
                          cache_mb=2048)  # 50-100 demos at 84² are ~100-200 MB decoded: decode them once
    spec = next(iter(Pipeline(data).embodiments.values()))
    budget = args.train_minutes * 60
    b = cfg.backbone
    encoder = f"{b.image_channels} conv" if b.image_encoder == "conv" else \
        f"{b.image_encoder} (stage {b.image_stage}, freeze {b.image_freeze})"
    encoder += " image encoders" + (" FiLM-conditioned on the instruction" if b.image_film else "")
    print(f"[demo] 2/4 fine-tuning the embedded policy ({encoder}, expert {cfg.expert.width}x"
          f"{cfg.expert.depth}, frozen MiniLM-L6 instruction features) for {budget / 60:.0f} min")
    procs = args.train_processes or (2 if (os.cpu_count() or 1) >= 2 else 1)
    # one process: a data-loader worker on the other core; several: each rank loads (its slice) in-process
    tc = TrainConfig(steps=100_000, batch_size=args.batch_size, lr=args.lr, warmup_steps=100, min_lr_ratio=0.05,
                     weight_decay=1e-4, ema_decay=0.995, save_every=500, keep_last=1,
                     num_workers=1 if procs == 1 else 0, augment=batch_augment,
                     seed=args.seed, max_seconds=budget, fit_steps_to_time=True,
                     feature_cache_mb=recipes.feature_cache_mb(cfg, sample_augment or batch_augment))
    print(f"[demo]     {procs} data-parallel process(es) x batch {args.batch_size}")
    create = functools.partial(VLAPolicy.create, cfg, [spec], seed=args.seed)
    return train_processes(create, data, tc, Path(args.out) / "train", processes=procs, threads=args.threads,
                           resume=True)


def _evaluate(args: argparse.Namespace, ckpt: str) -> dict:
    from sim_eval.evaluate import evaluate
    from sim_eval.seeds import EVAL_SEED

    rep_dir = Path(args.out) / "report"
    print(f"[demo] 3/4 evaluating {ckpt}: nominal x{args.eval_episodes}, {len(args.factors)} factor(s) "
          f"x{args.factor_episodes}")
    nf = min(args.factor_episodes, args.eval_episodes) if args.factors else 0
    reports = []
    if nf:  # nominal + factors on seeds 1000.., then the rest of the nominal episodes
        reports.append(evaluate(ckpt, [args.task], args.factors, nf, args.workers, rep_dir / "factors", seed=EVAL_SEED,
                                image_size=args.image_size, videos_per_condition=1, max_steps=args.eval_max_steps))
    if args.eval_episodes > nf:
        reports.append(evaluate(ckpt, [args.task], (), args.eval_episodes - nf, args.workers, rep_dir / "nominal",
                                seed=EVAL_SEED + nf, image_size=args.image_size, videos_per_condition=1,
                                max_steps=args.eval_max_steps))
    for r, sub in zip(reports, ["factors", "nominal"] if nf else ["nominal"]):
        r["videos"] = [f"{sub}/{v}" for v in r["videos"]]
    return _merge(reports)


def main(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")

    from sim_eval.evaluate import write_report
    from sim_eval.report import console_table

    cfg, sample_augment, batch_augment, randomize, recipe = _recipe(args)
    plan = _demo_sets(args, randomize)  # bad demo counts / weights are refused before anything is written
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t = time.perf_counter()
    sets = _demos(args, plan)
    timings["collect_s"] = time.perf_counter() - t
    recipe["demos"] = {p.parent.name: {"weight": w, "episodes": json.loads((p / "collect_summary.json").read_text())
                                       ["recorded"]} for p, w in sets}

    t = time.perf_counter()
    res = _train(args, sets, cfg, sample_augment, batch_augment)
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    ckpt = str(res.policy_dir)
    report = _evaluate(args, ckpt)
    timings["eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_all
    report["meta"].update(timings=timings, recipe=recipe, training={
        "steps": res.step, "samples_per_second": res.samples_per_second,
        "final_loss": res.losses[-1] if res.losses else None, "trainable_params": res.trainable_params,
        "total_params": res.total_params})
    rep_dir = out / "report"
    write_report(report, rep_dir)

    print(f"\n[demo] 4/4 report: {rep_dir / 'report.md'} (table), {rep_dir / 'success.png'}, videos in "
          f"{rep_dir}/*/videos")
    print("\n".join(console_table(report["summary"])))
    print("[demo] " + recipe_line(recipe))
    print("[demo] wall time: " + ", ".join(f"{k[:-2]} {v / 60:.1f} min" for k, v in timings.items()))
    print(f"[demo] checkpoint: {ckpt}   loss curve: {res.out_dir / 'loss.png'}")
    print(f"[demo] serve it:   vla serve --checkpoint {ckpt}")
    (out / "demo_summary.json").write_text(json.dumps({"timings": timings, "checkpoint": ckpt, "recipe": recipe,
                                                        "overall": report["summary"]["overall"]}, indent=2))
    return 1 if report["errors"] else 0


def recipe_line(recipe: dict) -> str:
    """Which nuisance factors the training demos randomized and which stayed held out (never seen)."""
    seen = ", ".join(recipe["randomized_in_training"]) or "none (nominal demos)"
    demos = " + ".join(f"{d['episodes']} {name} (weight {d['weight']:g})"
                       for name, d in recipe.get("demos", {}).items()) or "?"
    return (f"demos: {demos}; training randomized: {seen}; held out (never in training): "
            f"{', '.join(recipe['held_out'])}; "
            f"image encoder {recipe['image_encoder']}{' + FiLM' if recipe.get('image_film') else ''}, "
            f"augmentation {recipe['augment']}"
            + (f", demos collected with action noise {recipe['action_noise']:g} (DART)" if recipe.get("action_noise")
               else ""))
