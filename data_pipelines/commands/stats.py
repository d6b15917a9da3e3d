"""``vla stats DATA``: compute (or load from cache) and print a dataset's normalization stats."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="?", help="RLDS TFDS directory (<name>/<version> or <name>), LeRobot directory, "
                                     "or a dataset name under --data-dir")
    parser.add_argument("--data-dir", default=None, help="TFDS data_dir to look the name up in")
    parser.add_argument("--name", default=None, help="registered OXE name to standardize with (default: the "
                                                     "dataset's own name)")
    parser.add_argument("--mapping", default=None, help="JSON/YAML key mapping for unregistered data")
    parser.add_argument("--split", default="train", help="split, e.g. train, val, 'train[:90%%]' (default train)")
    parser.add_argument("--mode", choices=("quantile", "zscore"), default="quantile")
    parser.add_argument("--max-episodes", type=int, default=None, help="compute from the first N episodes only")
    parser.add_argument("--recompute", action="store_true", help="ignore the cache")
    parser.add_argument("--json", action="store_true", help="print the stats as JSON")
    parser.add_argument("--list", action="store_true",
                        help="list every registered OXE dataset (TFDS name, embodiment: cameras, state/action layout, "
                             "gripper convention, control rate, instruction source) and the named mixtures, and exit")


def _table(label: str, stats, names=None) -> str:
    rows = [f"{label} ({stats.dim} dims)",
            f"  {'dim':>4} {'mode':>8} {'mean':>11} {'std':>11} {'q01':>11} {'q99':>11}"]
    for d in range(stats.dim):
        rows.append(f"  {d:>4} {stats.mode[d]:>8} {stats.mean[d]:>11.5g} {stats.std[d]:>11.5g} "
                    f"{stats.q01[d]:>11.5g} {stats.q99[d]:>11.5g}")
    return "\n".join(rows)


def _list() -> None:
    from data_pipelines.oxe import REGISTRY, UNSPECIFIED, summary
    from data_pipelines.oxe.mixtures import mixture, mixture_names

    print(f"{len(REGISTRY)} registered OXE datasets (TFDS name  embodiment: cameras, state, action, gripper, rate, "
          "instruction):")
    for name, e in REGISTRY.items():
        alias = f" [alias {', '.join(e.aliases)}]" if e.aliases else ""
        print(f"  {name}{alias}\n      {summary(e)}")
    print(f"not registered (no published spec found): {', '.join(sorted(UNSPECIFIED))}")
    print("named mixtures (--data-mix):")
    for m in mixture_names():
        print(f"  {m}: {len(mixture(m)[1])} datasets")


def main(args: argparse.Namespace) -> int:
    if args.list:
        _list()
        return 0
    if not args.data:
        raise ValueError("give a dataset directory or name (or --list)")
    from data_pipelines.sources import open_dataset
    from data_pipelines.stats import NormConfig, get_stats

    src = open_dataset(args.data, name=args.name, mapping=args.mapping, split=args.split, data_dir=args.data_dir)
    r = get_stats(src, NormConfig(args.mode, max_episodes=args.max_episodes), recompute=args.recompute)
    spec = src.spec
    if args.json:
        print(json.dumps({"dataset": str(src.dir), "split": args.split, "embodiment": spec.name,
                          "episodes": r.episodes, "steps": r.steps, "cache": str(r.path), "from_cache": r.from_cache,
                          "state": r.state.to_dict(), "action": r.action.to_dict()}, indent=1))
        return 0
    print(f"dataset   {src.dir}  split={args.split}  ({len(src)} episodes)")
    print(f"embodiment {spec.name}: cameras={list(spec.cameras)} action_space={spec.action_space} "
          f"gripper_dims={list(spec.gripper_dims)} control_hz={spec.control_hz}")
    print(f"stats from {r.episodes} episodes / {r.steps} steps, mode={args.mode}; "
          f"{'loaded from cache' if r.from_cache else 'computed and cached'}: {r.path}")
    if r.state.dim:
        print(_table("state", r.state))
    print(_table("action", r.action))
    return 0
