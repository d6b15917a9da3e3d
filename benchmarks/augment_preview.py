"""What the batch augmentation presets do, and what they cost.

    python benchmarks/augment_preview.py [--task Lift] [--data DIR] [--synthetic] [--out /tmp/augment_preview.png]
    python benchmarks/augment_preview.py --time   # ms per batch of 32 samples x 2 cameras at 84², 1 thread

Writes a PNG grid: one row per preset (the frames as recorded, then ``light`` and ``strong``), ``--draws`` columns
of independent draws, each tile the cameras side by side. The frames: a reset of a sim task rendered with MuJoCo
(default), the first sample of a dataset (``--data``), or a synthetic scene (``--synthetic``).
``--time`` prints the cost of each preset (min / median over rounds, one thread) beside the per-sample PIL
augmentation of ``data_pipelines.transforms`` on the same frames.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("MUJOCO_GL", "egl")


def sim_frames(task: str, size: int) -> dict:
    from sim_eval.envs import make_env

    env = make_env(task, image_size=size)
    try:
        return env.reset(seed=0)["images"]
    finally:
        env.close()


def data_frames(path: str, size: int) -> dict:
    from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig

    cfg = PipelineConfig(datasets=(DatasetConfig(path),), image_size=(size, size), train=False, augment=None)
    return next(iter(Pipeline(cfg)))["images"]


def synthetic_frames(size: int) -> dict:
    """A table, a red cube, a grey arm and a floor, from two viewpoints."""
    import numpy as np

    def scene(cube_xy, table_top):
        img = np.full((size, size, 3), (70, 90, 120), np.uint8)  # wall
        img[int(size * table_top):] = (150, 110, 70)  # table
        y, x = (int(v * size) for v in cube_xy)
        s = max(2, size // 10)
        img[y - s:y + s, x - s:x + s] = (200, 30, 30)  # cube
        img[: y - 2 * s, x - s // 2:x + s // 2] = (160, 160, 160)  # arm
        return img

    return {"agentview": scene((0.65, 0.5), 0.5), "wrist": scene((0.6, 0.45), 0.2)}


def grid(frames: dict, draws: int, seed: int):
    """PIL image: rows original / light / strong, ``draws`` columns, cameras side by side in each tile."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from data_pipelines.augment import PRESETS, augment_images, batch_generator

    cams = list(frames)
    x = torch.stack([torch.from_numpy(np.ascontiguousarray(frames[c])).permute(2, 0, 1) for c in cams])[None]
    x = x.expand(draws, -1, -1, -1, -1).contiguous()
    rows = [("as recorded", x)]
    for name, cfg in PRESETS.items():
        if cfg is not None:
            rows.append((name, augment_images(x, None, cfg, batch_generator(seed, 0, 0))))
    H, W = x.shape[-2:]
    pad, label = 4, 16
    tile_w = len(cams) * W + (len(cams) - 1) * 2
    canvas = Image.new("RGB", (draws * (tile_w + pad) + pad, len(rows) * (H + label + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, imgs) in enumerate(rows):
        top = pad + r * (H + label + pad)
        draw.text((pad, top), f"{name} ({' | '.join(cams)})", fill="black")
        for d in range(draws if r else 1):
            for c in range(len(cams)):
                tile = Image.fromarray(imgs[d, c].permute(1, 2, 0).numpy())
                canvas.paste(tile, (pad + d * (tile_w + pad) + c * (W + 2), top + label))
    return canvas


def timing(rounds: int) -> None:
    """ms per batch (32 samples x 2 cameras, 84²) on one thread: each preset, and the per-sample PIL path."""
    import numpy as np
    import torch

    from data_pipelines.augment import PRESETS, augment_images, batch_generator
    from data_pipelines.transforms import AugmentConfig, ImageTransform

    torch.set_num_threads(1)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (32, 2, 3, 84, 84), dtype=np.uint8))
    mask = torch.ones(32, 2, dtype=torch.bool)

    def measure(fn) -> tuple[float, float]:
        fn(0)
        ts = []
        for i in range(rounds):
            t = time.perf_counter()
            fn(i)
            ts.append(time.perf_counter() - t)
        return min(ts) * 1e3, float(np.median(ts)) * 1e3

    for name, cfg in PRESETS.items():
        if cfg is not None:
            lo, med = measure(lambda i, c=cfg: augment_images(x, mask, c, batch_generator(0, i, 0)))
            print(f"batch augmentation {name:<7} 32x2 @84²: min {lo:6.2f} ms  median {med:6.2f} ms  (1 thread)")
    frames = [img.permute(1, 2, 0).numpy() for img in x.reshape(-1, 3, 84, 84)]
    tf = ImageTransform((84, 84), train=True, augment=AugmentConfig())
    lo, med = measure(lambda i: [tf(f, np.random.default_rng(i)) for f in frames])
    print(f"per-sample PIL (transforms.AugmentConfig()) 64 frames: min {lo:6.2f} ms  median {med:6.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="Lift", help="sim task whose reset frame is shown (default Lift)")
    ap.add_argument("--data", default=None, help="a dataset directory: its first sample's frames instead")
    ap.add_argument("--synthetic", action="store_true", help="a synthetic scene instead (no MuJoCo)")
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--draws", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/augment_preview.png")
    ap.add_argument("--time", action="store_true", help="print the per-batch cost instead")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    if args.time:
        timing(args.rounds)
        return 0
    if args.synthetic:
        frames, source = synthetic_frames(args.size), "synthetic scene"
    elif args.data:
        frames, source = data_frames(args.data, args.size), args.data
    else:
        frames, source = sim_frames(args.task, args.size), f"{args.task} reset (seed 0)"
    grid(frames, args.draws, args.seed).save(args.out)
    print(f"wrote {args.out}: as recorded, light and strong x {args.draws} draws of {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
