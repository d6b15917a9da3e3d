"""Forward + backward time of the image encoders on one torch thread: the ``vla demo`` conv encoder vs timm
EfficientNet-Lite0 cut at stages 2/3/4, trainable or with a frozen prefix (no backward through it).

    python benchmarks/image_encoders.py [--batch 32] [--sizes 64 84 96] [--rounds 5]

Variants are measured interleaved (round-robin, ``--rounds`` times) and the median is printed as ms/batch,
with the ratio to the conv encoder at the same image size.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

# (label, BackboneConfig changes); the conv row is the demo recipe's encoder
LITE0 = "timm:efficientnet_lite0"
VARIANTS = [
    ("conv (demo)", {}),
    ("lite0 stage2", dict(image_encoder=LITE0, image_stage=2)),
    ("lite0 stage2 frozen<=1", dict(image_encoder=LITE0, image_stage=2, image_freeze="stages:1")),
    ("lite0 stage2 frozen", dict(image_encoder=LITE0, image_stage=2, image_freeze="all")),
    ("lite0 stage3", dict(image_encoder=LITE0, image_stage=3)),
    ("lite0 stage3 frozen<=2", dict(image_encoder=LITE0, image_stage=3, image_freeze="stages:2")),
    ("lite0 stage3 frozen", dict(image_encoder=LITE0, image_stage=3, image_freeze="all")),
    ("lite0 stage4", dict(image_encoder=LITE0, image_stage=4)),
    ("lite0 stage4 frozen<=3", dict(image_encoder=LITE0, image_stage=4, image_freeze="stages:3")),
]


def build(changes: dict) -> torch.nn.Module:
    from finetune.recipes import demo_config
    from vla.backbones.embedded import build_image_encoder

    cfg = demo_config()
    cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, **changes))
    return build_image_encoder(cfg, out_dim=384).train()  # MiniLM-L6 width


def step_ms(encoder: torch.nn.Module, images: torch.Tensor) -> float:
    start = time.perf_counter()
    encoder.zero_grad(set_to_none=True)
    encoder(images).square().mean().backward()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 84, 96])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoders = {label: build(changes) for label, changes in VARIANTS}
    params = {label: sum(p.numel() for p in e.parameters()) for label, e in encoders.items()}
    times: dict[tuple[str, int], list[float]] = {(label, s): [] for label in encoders for s in args.sizes}
    images = {s: torch.randint(0, 256, (args.batch, 3, s, s), dtype=torch.uint8) for s in args.sizes}
    for enc in encoders.values():  # warm-up
        for s in args.sizes:
            step_ms(enc, images[s])
    for _ in range(args.rounds):
        for s in args.sizes:
            for label, enc in encoders.items():
                times[(label, s)].append(step_ms(enc, images[s]))
    med = {k: statistics.median(v) for k, v in times.items()}
    head = f"{'encoder':24s} {'params':>8s} " + " ".join(f"{f'{s}² ms':>9s} {'x conv':>6s}" for s in args.sizes)
    print(f"forward+backward, batch {args.batch}, 1 torch thread, median of {args.rounds} interleaved rounds")
    print(head)
    conv = VARIANTS[0][0]
    for label in encoders:
        cells = " ".join(f"{med[(label, s)]:9.1f} {med[(label, s)] / med[(conv, s)]:6.2f}" for s in args.sizes)
        print(f"{label:24s} {params[label] / 1e6:7.2f}M {cells}")


if __name__ == "__main__":
    main()
