"""Data pipeline throughput vs. the default model's training step rate (same run, same machine).

Builds a synthetic RLDS dataset (2 cameras, JPEG, ``--source-size``²), then measures:
  1. pipeline samples/s: decode + standardize + normalize + chunk + random-resized-crop/jitter to
     ``--image-size``² + batch, through the torch DataLoader with ``--workers`` workers;
  2. training samples/s of ``default_config()`` (collate + loss + backward + AdamW step), on
     pre-built batches so that no data work is counted;
  3. the ratio (goal >= 2: the pipeline is never the bottleneck) and, with both running together,
     the fraction of the training loop spent waiting for data;
  4. side by side: pipeline samples/s of one registered OXE dataset vs a 3-dataset named-mixture slice
     (``openvla/oxe_magic_soup`` members jaco_play + language_table + austin_buds, written at their published
     feature specs and image sizes, drawn with the published weights x size), in-process and with workers.

    python benchmarks/data_throughput.py [--workers 2] [--batch-size 8] [--device cpu|cuda] [--only mixture]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_dataset(out: Path, episodes: int, steps: int, size: int):
    from data_pipelines.rlds.writer import write_rlds
    from vla.types import EmbodimentSpec

    spec = EmbodimentSpec(name="bench_arm", cameras=("primary", "wrist"), state_dim=8, action_dim=7, gripper_dims=(6,))
    rng = np.random.default_rng(0)

    def gen():
        for e in range(episodes):
            # smooth random images (JPEG-realistic), not white noise
            low = rng.integers(0, 256, (steps, 2, size // 16, size // 16, 3), dtype=np.uint8)
            imgs = np.repeat(np.repeat(low, 16, axis=2), 16, axis=3)
            yield {"steps": {"observation": {"primary": imgs[:, 0], "wrist": imgs[:, 1],
                                             "state": rng.standard_normal((steps, 8)).astype(np.float32)},
                             "action": rng.standard_normal((steps, 7)).astype(np.float32),
                             "language_instruction": f"pick up object {e % 5}"}}

    return write_rlds(gen(), out, "bench_arm", spec, image_encoding="jpeg", episodes_per_shard=8), spec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--steps", type=int, default=40, help="steps per episode")
    ap.add_argument("--source-size", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=480, help="samples to time the pipeline on")
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--only", choices=("all", "training", "mixture"), default="all",
                    help="training: sections 1-3; mixture: section 4 (single OXE dataset vs 3-dataset mixture)")
    args = ap.parse_args()
    if args.only in ("all", "training"):
        training_vs_pipeline(args)
    if args.only in ("all", "mixture"):
        mixture_vs_single(args)
    return 0


MIX_MEMBERS = ("jaco_play", "language_table", "austin_buds_dataset_converted_externally_to_rlds")


def write_oxe(name: str, out: Path, episodes: int, steps: int) -> None:
    """``episodes`` random episodes of a registered OXE dataset's published spec, smooth (JPEG-realistic) images."""
    from data_pipelines import oxe
    from data_pipelines.rlds import features as F
    from data_pipelines.rlds.writer import write_tfds

    feats = oxe.get_entry(name).features
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(episodes):
        ep = F.random_episode(feats, rng, steps)
        obs = ep["steps"]["observation"]
        for k, leaf in feats["steps"]["feature"]["observation"].items():
            if F.is_leaf(leaf) and leaf["kind"] == "image":
                h, w, _ = leaf["shape"]
                low = rng.integers(0, 256, (steps, h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
                obs[k] = np.repeat(np.repeat(low, 16, axis=1), 16, axis=2)[:, :h, :w]
        if name == "language_table":
            obs["instruction"] = np.zeros((steps, 512), np.int32)
            obs["instruction"][:, :4] = np.frombuffer(b"push", np.uint8)
        eps.append(ep)
    write_tfds({"train": eps}, feats, out, name, version="0.1.0", episodes_per_shard=8)


def _rate(cfg, batch_size: int, workers: int, samples: int) -> float:
    from data_pipelines.torch_data import VLAIterableDataset

    dl = VLAIterableDataset(cfg).dataloader(batch_size=batch_size, num_workers=workers, prefetch_factor=4)
    it = iter(dl)
    for _ in range(max(1, 4 * workers)):  # start-up, and the batches workers prefetched meanwhile, are not throughput
        next(it)
    n, t0 = 0, time.perf_counter()
    while n < samples:
        n += len(next(it))
    rate = n / (time.perf_counter() - t0)
    del it, dl  # persistent workers: shut them down now, not at interpreter exit
    return rate


def mixture_vs_single(args) -> None:
    from data_pipelines.oxe.mixtures import dataset_configs
    from data_pipelines.pipeline import DatasetConfig, PipelineConfig

    tmp = Path(tempfile.mkdtemp(prefix="vla_bench_oxe_"))
    for name in MIX_MEMBERS:
        write_oxe(name, tmp, args.episodes, args.steps)
    _, mix = dataset_configs("openvla/oxe_magic_soup", str(tmp), allow_missing=True, report=lambda s: None)
    single = (DatasetConfig(str(tmp / MIX_MEMBERS[2] / "0.1.0"), cameras=("primary", "wrist")),)
    size = (args.image_size, args.image_size)
    cfgs = {"single": PipelineConfig(datasets=single, horizon=16, image_size=size, seed=0),
            "mixture": PipelineConfig(datasets=mix, horizon=16, image_size=size, seed=0, balance_weights=True)}
    rows = []
    for label, workers, n in ((f"{args.workers} workers", args.workers, args.samples),
                              ("1 process", 0, args.samples // 2)):
        rows.append((label, *(_rate(cfgs[k], args.batch_size, workers, n) for k in ("single", "mixture"))))
    print(f"OXE mixture vs single dataset: {args.episodes} episodes x {args.steps} steps each, published specs "
          f"(jaco_play 2x224² png, language_table 360x640 jpeg, austin_buds 2x128² png), {args.image_size}² out, "
          f"augment+chunk+batch {args.batch_size}")
    print(f"{'pipeline samples/s':24s} {'austin_buds alone':>18s} {'3-dataset mixture':>18s} {'mixture/single':>15s}")
    for label, one, three in rows:
        print(f"{label:24s} {one:18.1f} {three:18.1f} {three / one:15.2f}")


def training_vs_pipeline(args) -> None:
    import torch

    from data_pipelines.pipeline import DatasetConfig, PipelineConfig
    from data_pipelines.torch_data import VLAIterableDataset
    from vla.config import default_config
    from vla.policy import VLAPolicy

    tmp = Path(tempfile.mkdtemp(prefix="vla_bench_"))
    t0 = time.perf_counter()
    root, _ = make_dataset(tmp, args.episodes, args.steps, args.source_size)
    print(f"dataset: {args.episodes} episodes x {args.steps} steps, 2 cameras {args.source_size}² JPEG "
          f"({sum(f.stat().st_size for f in root.iterdir()) / 1e6:.1f} MB) written in {time.perf_counter() - t0:.1f}s")

    cfg_model = default_config()
    cfg = PipelineConfig(datasets=(DatasetConfig(str(root)),), horizon=cfg_model.action_horizon,
                         image_size=(args.image_size, args.image_size), train=True, seed=0)
    ds = VLAIterableDataset(cfg)

    # 1. pipeline alone
    dl = ds.dataloader(batch_size=args.batch_size, num_workers=args.workers, prefetch_factor=4)
    it = iter(dl)
    next(it)  # worker start-up (imports, shard open) is not throughput
    n, t0 = 0, time.perf_counter()
    while n < args.samples:
        n += len(next(it))
    pipe_rate = n / (time.perf_counter() - t0)
    del it, dl
    # same, in one process (what one worker core delivers)
    it = iter(ds.dataloader(batch_size=args.batch_size, num_workers=0))
    next(it)
    n1, t0 = 0, time.perf_counter()
    while n1 < args.samples // 2:
        n1 += len(next(it))
    single_rate = n1 / (time.perf_counter() - t0)
    del it

    # 2. training alone (default model), on pre-built batches
    device = torch.device(args.device)
    policy = VLAPolicy.create(cfg_model, embodiments=list(ds.embodiments.values()))
    policy.model.to(device)
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=1e-4)
    sample_it = iter(ds.dataloader(batch_size=args.batch_size, num_workers=0))
    batches = [next(sample_it) for _ in range(2)]

    def train_step(batch):
        mb = policy.collate(batch)
        loss = policy.model.compute_loss(mb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    train_step(batches[0])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for i in range(args.train_steps):
        train_step(batches[i % 2])
    _sync(device)
    train_rate = args.train_steps * args.batch_size / (time.perf_counter() - t0)

    # 3. together: the trainer fed by the DataLoader; time spent waiting on data
    dl = ds.dataloader(batch_size=args.batch_size, num_workers=args.workers, prefetch_factor=4)
    it = iter(dl)
    next(it)
    wait = 0.0
    t_all = time.perf_counter()
    for _ in range(args.train_steps):
        tw = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - tw
        train_step(batch)
    _sync(device)
    total = time.perf_counter() - t_all
    del it, dl

    params = sum(p.numel() for p in policy.model.parameters()) / 1e6
    print(f"machine: {os.cpu_count()} CPU cores; training device: {device}; model: default_config() "
          f"({params:.1f}M params, {cfg_model.image_size[0]}² model input, horizon {cfg_model.action_horizon})")
    print(f"{'measure':58s} {'value':>10s}")
    print(f"{f'pipeline samples/s ({args.workers} workers, 2 cams {args.image_size}², augment+chunk+batch)':58s} "
          f"{pipe_rate:10.1f}")
    print(f"{'pipeline samples/s (1 process, no workers)':58s} {single_rate:10.1f}")
    print(f"{f'training samples/s (batch {args.batch_size}, fwd+bwd+AdamW)':58s} {train_rate:10.1f}")
    print(f"{'ratio pipeline / training (goal >= 2)':58s} {pipe_rate / train_rate:10.2f}")
    print(f"{'together: fraction of train loop waiting for data':58s} {wait / total:10.1%}")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    sys.exit(main())
