"""``vla collect``: record scripted-expert demos of a sim task into an RLDS directory."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True,
                        help="Lift | Stack | PickPlaceCan | Door | LiftColor | PickPlaceOne | a Meta-World MT10 task")
    parser.add_argument("--episodes", type=int, default=20, help="successful episodes to record (default 20)")
    parser.add_argument("--out", required=True, help="output directory (dataset goes to OUT/<name>/1.0.0)")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--image-size", type=int, default=96, help="square camera image size in px (default 96)")
    parser.add_argument("--seed", type=int, default=0,
                        help="first episode seed (default 0; all attempts must stay below 1000, evaluation's)")
    parser.add_argument("--name", default=None, help="dataset name (default <task>_expert)")
    parser.add_argument("--max-attempts", type=int, default=None, help="episodes to try at most (default 2N+10)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="step limit per episode; demos not done by then are discarded (default: the task's)")
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help="run episodes as Ray tasks: 'auto' starts a local Ray of --workers CPUs, ADDRESS "
                             "(HOST:PORT or ray://HOST:PORT) joins a running cluster; a task whose worker dies "
                             "is retried (needs: pip install vla-stack[ray])")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument("--randomize", nargs="+", default=[], metavar="FACTOR[@SEV]",
                        help="draw these factors per episode, severity uniform in 0..SEV (default 2; 0 = nominal): "
                             "camera_pose lighting table_color object_color object_size object_pose distractors "
                             "dynamics (paraphrase is held out for evaluation); recorded in each episode's "
                             "metadata 'randomization', never with evaluation's seeds")
    parser.add_argument("--action-noise", type=float, default=0.0, metavar="STD",
                        help="DART noise injection: the robot executes the expert's action plus a seeded, "
                             "persistent drift of this std (action units, arm dims) while the demo records the "
                             "expert's own, corrective action (default 0 = off; e.g. 0.15)")


def main(args: argparse.Namespace) -> int:
    from sim_eval.collect import DatasetExistsError, collect

    if args.ray:  # Ray missing or its address unreachable: fail here, in seconds, before any work
        from sim_eval.ray_backend import check_ray

        check_ray(args.ray)
    try:
        s = collect(args.task, args.episodes, args.out, workers=args.workers, image_size=args.image_size,
                    seed=args.seed, dataset_name=args.name, max_attempts=args.max_attempts, max_steps=args.max_steps,
                    overwrite=args.overwrite, randomize=args.randomize, ray=args.ray,
                    action_noise=args.action_noise)
    except DatasetExistsError as e:
        raise ValueError(f"{e.path} already holds a dataset: pass --overwrite to replace it, "
                         "or choose another --out/--name") from None
    print(s.line(), flush=True)
    if s.recorded < s.requested:
        attempts = args.max_attempts or 2 * s.requested + 10
        print(f"vla collect: only {s.recorded} of {s.requested} episodes succeeded within {attempts} attempts")
        return 1
    return 0
