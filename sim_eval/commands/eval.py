"""``vla eval``: generalization eval of a policy in simulation (JSON + Markdown + PNG + mp4 report)."""

from __future__ import annotations

import argparse
import sys

from sim_eval.seeds import EVAL_SEED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="expert", help="'expert' (scripted), a checkpoint dir, "
                        "http://host:port (vla serve) or ws://host:port (openpi)")
    parser.add_argument("--suite", default=None,
                        help="robosuite (Lift, Stack, PickPlaceCan, Door) | language (LiftColor, PickPlaceOne) | "
                        "mt10 (Meta-World)")
    parser.add_argument("--task", nargs="*", default=None, help="task name(s); default: the suite's tasks, or Lift")
    parser.add_argument("--factors", nargs="*", default=[],
                        help="factor[@severity 0..3] ...: camera_pose lighting table_color object_color object_size "
                             "object_pose distractors paraphrase dynamics (nominal is always run)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task and condition (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED,
                        help=f"first episode seed (default {EVAL_SEED}; `vla collect` records demos from 0)")
    parser.add_argument("--factor-seed", type=int, default=0, help="seed of the factor draws (default 0)")
    parser.add_argument("--embodiment", default=None,
                        help="the policy's embodiment that drives the task's robot, e.g. one fine-tuned under "
                             "another name (default: the robot's own, e.g. robosuite_panda)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="camera image size in px (default: the policy embodiment's, else 96)")
    parser.add_argument("--videos", type=int, default=2, help="mp4 rollouts per task and condition (default 2)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the per-task step limit")
    parser.add_argument("--execute-horizon", type=int, default=None,
                        help="actions of each predicted chunk executed before re-querying (default: the embodiment's)")
    parser.add_argument("--exec-mode", default="sync", choices=("sync", "naive", "blend", "rtc"),
                        help="latency-aware execution: sync (the robot waits for each chunk; default), naive (switch "
                             "to the late chunk on arrival), blend (ramp from the old chunk), rtc (real-time chunking)")
    parser.add_argument("--delay-steps", type=int, default=None,
                        help="simulated inference delay in control steps: the robot keeps executing the old chunk")
    parser.add_argument("--delay-ms", type=_delay_ms, default=None,
                        help="the delay in milliseconds, rounded up to control steps at the task's control rate; "
                             "'measured': a served policy's median round trip")
    parser.add_argument("--instruction-ablation", nargs="+", default=[], choices=("empty", "mismatched"),
                        help="also run the nominal seeds with the prompt replaced: empty (the content-free 'do the "
                             "task'), or mismatched (another object of the scene / another task's instruction); the "
                             "report shows the drop and, on grounded tasks, how often the newly named object is "
                             "achieved")
    parser.add_argument("--instruction", default=None,
                        help="a fixed prompt for every episode (LiftColor / PickPlaceOne: must name one object of "
                             "the scene, which becomes the target)")
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help="run episodes as Ray tasks: 'auto' starts a local Ray of --workers CPUs, ADDRESS "
                             "(HOST:PORT or ray://HOST:PORT) joins a running cluster; a task whose worker dies "
                             "is retried (needs: pip install vla-stack[ray])")
    parser.add_argument("--out", required=True, help="report directory")


def _delay_ms(text: str) -> float | str:
    if text == "measured":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds or 'measured', got {text!r}") from None


def main(args: argparse.Namespace) -> int:
    from sim_eval.evaluate import evaluate
    from sim_eval.language_report import language_console
    from sim_eval.report import console_table
    from sim_eval.tasks import suite_tasks

    if args.ray:  # Ray missing or its address unreachable: fail here, in seconds, before any work
        from sim_eval.ray_backend import check_ray

        check_ray(args.ray)
    tasks = args.task or (list(suite_tasks(args.suite)) if args.suite else ["Lift"])
    report = evaluate(args.policy, tasks, args.factors, args.episodes, args.workers, args.out, seed=args.seed,
                      factor_seed=args.factor_seed, image_size=args.image_size, embodiment=args.embodiment,
                      videos_per_condition=args.videos, max_steps=args.max_steps, execute_horizon=args.execute_horizon,
                      exec_mode=args.exec_mode, delay_steps=args.delay_steps, delay_ms=args.delay_ms,
                      instruction_ablation=args.instruction_ablation, instruction=args.instruction,
                      ray=args.ray)
    errors = report["errors"]
    if len(errors) == len(report["episodes"]):
        print(f"vla eval: error: all {len(errors)} episodes errored (no success rate, no plot; see "
              f"{args.out}/report.md), first: {errors[0]}", file=sys.stderr)
        return 1
    print("\n".join(console_table(report["summary"])))
    meta = report["meta"]
    if meta["exec_mode"] != "sync" or meta["delay_steps"]:
        for o in report["summary"]["overall"]:
            cells = [f"{label} {'–' if o[k] is None else format(o[k], f)}" for label, k, f in
                     (("switch jump", "mean_discontinuity", ".3f"), ("EE jerk", "mean_jerk", ".1f"),
                      ("steps to success", "mean_steps_to_success", ".0f"))]
            measured = "" if meta.get("measured_latency_ms") is None else \
                f" (measured round trip {meta['measured_latency_ms']:.0f} ms)"
            print(f"{o['condition']}: {meta['exec_mode']}, delay {meta['delay_steps']} steps{measured}: "
                  + ", ".join(cells))
    for line in language_console(report.get("language")):
        print(line)
    for note in report.get("retried", []):
        print(f"vla eval: {note}", file=sys.stderr)
    print(f"report: {args.out}/report.md, report.json, success.png, {len(report['videos'])} videos")
    if errors:
        print(f"{len(errors)} episode(s) errored (not counted in the success rates), first: {errors[0]}",
              file=sys.stderr)
        return 1
    return 0
