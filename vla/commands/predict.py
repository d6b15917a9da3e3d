"""``vla predict``: load a checkpoint (or build the embedded default) and predict one action chunk
on an observation: a saved .npz (images/<cam>, state, prompt) or a generated one."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint dir (default: fresh embedded default model)")
    parser.add_argument("--observation", default=None, help=".npz with images/<camera>, state, prompt arrays")
    parser.add_argument("--embodiment", default=None)
    parser.add_argument("--prompt", default="lift the red cube")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions")


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from vla.checkpoint import check_checkpoint_dir
    from vla.policy import VLAPolicy

    t0 = time.perf_counter()
    if args.checkpoint:
        policy = VLAPolicy.from_pretrained(check_checkpoint_dir(args.checkpoint, "--checkpoint"))
        source = args.checkpoint
    else:
        from vla.config import default_config
        from vla.types import EmbodimentSpec

        spec = EmbodimentSpec(name="panda", cameras=("agentview", "wrist"), state_dim=9, action_dim=7,
                              gripper_dims=(6,))
        policy = VLAPolicy.create(default_config(), [spec])
        source = "embedded default (untrained expert, pretrained MiniLM-L6)"
    spec = policy.spec(args.embodiment)
    load_s = time.perf_counter() - t0
    if args.observation:
        if not Path(args.observation).is_file():
            raise FileNotFoundError(f"--observation {args.observation}: no such file")
        data = np.load(args.observation)
        obs = {
            "images": {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("images/")},
            "state": data["state"].astype(np.float32),
            "prompt": str(data["prompt"]) if "prompt" in data.files else args.prompt,
        }
    else:
        rng = np.random.default_rng(args.seed)
        h, w = spec.image_size or policy.config.image_size
        print(f"no --observation given: using random input (random {h}x{w} images, random state, seed {args.seed})")
        obs = {
            "images": {c: rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for c in spec.cameras},
            "state": rng.normal(size=spec.state_dim).astype(np.float32),
            "prompt": args.prompt,
        }
    times = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        chunk = policy.predict([obs], embodiment=spec.name, seed=args.seed)[0]
        times.append(time.perf_counter() - t)
    np.set_printoptions(precision=3, suppress=True)
    print(f"policy: {source} ({policy.num_parameters() / 1e6:.1f}M params, loaded in {load_s:.1f}s)")
    print(f"embodiment: {spec.name}  cameras: {list(spec.cameras)}  prompt: {obs['prompt']!r}")
    print(f"action chunk {chunk.shape} ({spec.action_space}), first 3 steps:\n{chunk[:3]}")
    print(f"predict latency: median {1000 * float(np.median(times)):.1f} ms over {len(times)} calls")
    return 0
