"""``vla check DATA --checkpoint CKPT``: is DATA (a dataset or a recorded .npz of observations) compatible with
the checkpoint's embodiment?  Prints a table; exit 1 on any FAIL row (see ``data_pipelines.check``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="dataset (RLDS/LeRobot directory or name under --data-dir) or an observation "
                                     ".npz (images/<camera>, state[, prompt])")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    parser.add_argument("--embodiment", default=None, help="checkpoint embodiment to compare with (default: the "
                                                           "dataset's own name if the checkpoint has it, else its "
                                                           "default embodiment)")
    parser.add_argument("--data-dir", default=None, help="TFDS data_dir to look a dataset name up in")
    parser.add_argument("--name", default=None, help="registered OXE name to standardize the dataset with")
    parser.add_argument("--mapping", default=None, help="JSON/YAML key mapping for unregistered data")
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-episodes", type=int, default=None, help="stats from the first N episodes only")
    parser.add_argument("--z-threshold", type=float, default=1.0,
                        help="fail when a dim's mean moved by more than this many checkpoint stds (default 1)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def _load_specs(ckpt: Path):
    from vla import checkpoint

    path = checkpoint.check_checkpoint_dir(ckpt, "--checkpoint")
    meta = checkpoint.read_meta(path)
    return meta, checkpoint.read_embodiments(path, meta.embodiment_ids)


def main(args: argparse.Namespace) -> int:
    from data_pipelines.check import CheckConfig, compare, summarize_dataset, summarize_observations

    if args.z_threshold <= 0:
        raise ValueError(f"--z-threshold must be > 0, got {args.z_threshold}")
    meta, specs = _load_specs(args.checkpoint)
    by_name = {s.name: s for s in specs}
    if Path(args.data).suffix == ".npz":
        if not Path(args.data).is_file():
            raise FileNotFoundError(f"{args.data}: no such observation file")
        data = summarize_observations(Path(args.data))
    else:
        data = summarize_dataset(args.data, max_episodes=args.max_episodes, name=args.name, mapping=args.mapping,
                                 split=args.split, data_dir=args.data_dir)
    name = args.embodiment or (data.spec.name if data.spec and data.spec.name in by_name else meta.default_embodiment)
    if name not in by_name:
        raise ValueError(f"--embodiment {name!r}: the checkpoint has {sorted(by_name)}")
    report = compare(data, by_name[name], tuple(meta.config.image_size), CheckConfig(z_threshold=args.z_threshold))
    if args.json:
        print(json.dumps({"data": data.source, "embodiment": name, "ok": not report.failed,
                          "rows": [r.__dict__ for r in report.rows]}, indent=1))
    else:
        print(f"data        {data.source}\ncheckpoint  {args.checkpoint}  embodiment {name}\n")
        print(report.table())
        verdict = f"{len(report.failed)} mismatch(es): " + "; ".join(r.check for r in report.failed)
        print(f"\n{verdict if report.failed else 'compatible'}")
    return 1 if report.failed else 0
