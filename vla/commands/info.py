"""``vla info CHECKPOINT``: what a checkpoint holds (config, image input, embodiments, adapters, sizes)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint directory")


def main(args: argparse.Namespace) -> int:
    from vla.checkpoint import WEIGHTS_FILE, check_checkpoint_dir, read_meta

    path = check_checkpoint_dir(args.checkpoint, flag=None)
    meta = read_meta(path)
    cfg = meta.config
    print(f"checkpoint: {path}")
    print(f"backbone: {cfg.backbone.kind} {cfg.backbone.hf_model or 'MiniLM-L6 + conv'}")
    print(f"head: {cfg.head.kind}  horizon: {cfg.action_horizon}  "
          f"max dims: action {cfg.max_action_dim} state {cfg.max_state_dim} cameras {cfg.max_cameras}")
    h, w = cfg.image_size
    print(f"model images: {h}x{w} (HxW), mode {getattr(cfg, 'image_mode', 'resize')}")
    weights = path / WEIGHTS_FILE
    if weights.exists():
        print(f"weights: {weights.stat().st_size / 2**20:.1f} MiB")
    for name, idx in sorted(meta.embodiment_ids.items(), key=lambda kv: kv[1]):
        spec = json.loads((path / "embodiments" / f"{name}.json").read_text())
        adapter = (path / "adapters" / name).exists()
        size = "x".join(map(str, spec["image_size"])) if spec.get("image_size") else "any"
        print(f"  [{idx}] {name}: cameras={spec['cameras']} camera_size={size} state={spec['state_dim']} "
              f"action={spec['action_dim']} ({spec['action_space']}) "
              f"stats={'yes' if spec.get('action_stats') else 'no'} adapter={'yes' if adapter else 'no'}")
    return 0
