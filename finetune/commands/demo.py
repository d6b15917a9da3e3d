"""``vla demo``: collect scripted Lift demos -> fine-tune the embedded policy -> evaluate nominal and
perturbation factors -> report (table, PNG, mp4s) and how to serve the checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="vla_demo", help="output directory (default ./vla_demo)")
    parser.add_argument("--task", default="Lift", help="robosuite task (default Lift)")
    parser.add_argument("--demos", type=int, default=50, help="scripted demos to collect (default 50)")
    parser.add_argument("--train-minutes", type=float, default=18.0, help="training wall-time budget (default 18)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=50, help="nominal eval episodes (default 50)")
    parser.add_argument("--factor-episodes", type=int, default=20, help="episodes per factor (default 20)")
    parser.add_argument("--factors", nargs="*", default=["lighting@2", "table_color@2", "distractors@1"],
                        help="sim_eval factors to evaluate besides nominal")
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
    from types import SimpleNamespace

    from sim_eval.report import summarize

    episodes = [e for r in reports for e in r["episodes"]]
    meta = dict(reports[0]["meta"])
    meta["conditions"] = [c for r in reports for c in r["meta"]["conditions"] if c != "nominal" or r is reports[0]]
    meta["episodes_per_condition"] = {c: sum(e["condition"] == c for e in episodes) for c in meta["conditions"]}
    meta["episodes"] = meta["episodes_per_condition"].get("nominal", len(episodes))  # the table's n column is exact
    meta["seconds"] = sum(r["meta"]["seconds"] for r in reports)
    summary = summarize([SimpleNamespace(**{"error": "", **e}) for e in episodes])
    return {"meta": meta, "summary": summary, "episodes": episodes, "errors": [x for r in reports for x in r["errors"]],
            "videos": sorted(v for r in reports for v in r["videos"])}


def main(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")

    from data_pipelines.pipeline import DatasetConfig, PipelineConfig
    from finetune.config import TrainConfig
    from finetune.launch import train_processes
    from finetune.recipes import demo_augment, demo_config
    from sim_eval.collect import collect
    from sim_eval.evaluate import evaluate, write_report
    from sim_eval.report import console_table
    from sim_eval.seeds import EVAL_SEED
    from vla.policy import VLAPolicy

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. demos
    t = time.perf_counter()
    data_dir = out / "data"
    name = f"{args.task.lower()}_expert"
    existing = data_dir / name / "1.0.0"
    if (existing / "collect_summary.json").exists():
        print(f"[demo] 1/4 reusing demos in {existing}")
        path = existing
    else:
        print(f"[demo] 1/4 collecting {args.demos} scripted {args.task} demos ({args.workers} workers)")
        summary = collect(args.task, args.demos, data_dir, workers=args.workers, image_size=args.image_size,
                          seed=args.seed, overwrite=True)
        print("[demo] " + summary.line())
        path = Path(summary.path)
    timings["collect_s"] = time.perf_counter() - t

    # 2. fine-tune
    t = time.perf_counter()
    size = (args.image_size, args.image_size)
    augment = demo_augment()
    if args.color_gain is not None:
        augment = dataclasses.replace(augment, channel_gain=args.color_gain)
    data = PipelineConfig(datasets=(DatasetConfig(str(path)),), horizon=16, image_size=size, seed=args.seed,
                          buffer_episodes=16, augment=augment,  # batches mix many demos
                          cache_mb=2048)  # 50 demos at 84² are ~100 MB decoded: decode them once, not every epoch
    cfg = demo_config().replace(image_size=size)
    from data_pipelines.pipeline import Pipeline

    spec = next(iter(Pipeline(data).embodiments.values()))
    budget = args.train_minutes * 60
    print(f"[demo] 2/4 fine-tuning the embedded policy ({cfg.backbone.image_channels} conv encoders, expert "
          f"{cfg.expert.width}x{cfg.expert.depth}, frozen MiniLM-L6 instruction features) for {budget / 60:.0f} min")
    procs = args.train_processes or (2 if (os.cpu_count() or 1) >= 2 else 1)
    # one process: a data-loader worker on the other core; several: each rank loads (its slice) in-process
    tc = TrainConfig(steps=100_000, batch_size=args.batch_size, lr=args.lr, warmup_steps=100, min_lr_ratio=0.05,
                     weight_decay=1e-4, ema_decay=0.995, save_every=500, keep_last=1,
                     num_workers=1 if procs == 1 else 0,
                     seed=args.seed, max_seconds=budget, fit_steps_to_time=True)
    print(f"[demo]     {procs} data-parallel process(es) x batch {args.batch_size}")
    res = train_processes(functools.partial(VLAPolicy.create, cfg, [spec], seed=args.seed), data, tc, out / "train",
                          processes=procs, threads=args.threads, resume=True)
    timings["train_s"] = time.perf_counter() - t

    # 3. evaluate
    t = time.perf_counter()
    ckpt = str(res.policy_dir)
    rep_dir = out / "report"
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
    report = _merge(reports)
    timings["eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_all
    report["meta"]["timings"] = timings
    report["meta"]["training"] = {"steps": res.step, "samples_per_second": res.samples_per_second,
                                  "final_loss": res.losses[-1] if res.losses else None,
                                  "trainable_params": res.trainable_params, "total_params": res.total_params}
    write_report(report, rep_dir)

    # 4. summary
    print(f"\n[demo] 4/4 report: {rep_dir / 'report.md'} (table), {rep_dir / 'success.png'}, videos in "
          f"{rep_dir}/*/videos")
    print("\n".join(console_table(report["summary"])))
    print("[demo] wall time: " + ", ".join(f"{k[:-2]} {v / 60:.1f} min" for k, v in timings.items()))
    print(f"[demo] checkpoint: {ckpt}   loss curve: {res.out_dir / 'loss.png'}")
    print(f"[demo] serve it:   vla serve --checkpoint {ckpt}")
    (out / "demo_summary.json").write_text(json.dumps({"timings": timings, "checkpoint": ckpt,
                                                        "overall": report["summary"]["overall"]}, indent=2))
    return 1 if report["errors"] else 0
