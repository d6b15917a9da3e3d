"""``vla info CHECKPOINT``: what a checkpoint holds (config, embodiments, adapters, sizes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint directory")


def main(args: argparse.Namespace) -> int:
    path = Path(args.checkpoint)
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path}: not a VLA checkpoint (no config.json)")
    meta = json.loads(config_file.read_text())
    model = meta["model"]
    print(f"checkpoint: {path}")
    print(f"backbone: {model['backbone']['kind']} {model['backbone'].get('hf_model') or 'MiniLM-L6 + conv'}")
    print(f"head: {model['head']['kind']}  horizon: {model['action_horizon']}  "
          f"max dims: action {model['max_action_dim']} state {model['max_state_dim']} cameras {model['max_cameras']}")
    weights = path / "model.safetensors"
    if weights.exists():
        print(f"weights: {weights.stat().st_size / 2**20:.1f} MiB")
    for name, idx in sorted(meta.get("embodiment_ids", {}).items(), key=lambda kv: kv[1]):
        spec = json.loads((path / "embodiments" / f"{name}.json").read_text())
        adapter = (path / "adapters" / name).exists()
        print(f"  [{idx}] {name}: cameras={spec['cameras']} state={spec['state_dim']} action={spec['action_dim']} "
              f"({spec['action_space']}) stats={'yes' if spec.get('action_stats') else 'no'} adapter={'yes' if adapter else 'no'}")
    return 0
