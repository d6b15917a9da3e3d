"""A robot-controller loop against a policy server: real-time chunking or async chunk blending.

The "robot" is a toy numpy arm built from the server's ``/v1/metadata`` (its cameras, image size,
state and action dims), so the loop runs anywhere against any served checkpoint.  Each control tick
it asks the broker for one action, so the fixed-rate loop never stalls on the network:

* ``--mode rtc`` (default when the server supports it): ``RealTimeChunkBroker`` measures the round-trip
  latency, converts it to a delay ``d`` in control ticks, starts the next query ``d`` ticks before the
  chunk runs out and sends the not-yet-executed actions as ``prev_actions`` with ``delay_steps`` = d;
  the server inpaints a chunk that continues them, and the broker switches with no gap;
* ``--mode blend``: ``BlendingChunkBroker`` queries ``--prefetch`` ticks ahead and blends the overlap;
* ``--mode sync``: ``ChunkBroker`` queries when the chunk runs out (the loop waits).

    vla serve --checkpoint runs/demo/policy --port 8000 &   # or: vla serve --toy
    pip install serve/robot_client                         # on the robot: the light client only
    python examples/robot_client_loop.py --url http://127.0.0.1:8000 --hz 20 --steps 200
    python examples/robot_client_loop.py --self-serve   # starts a stand-in server on loopback itself
    python examples/robot_client_loop.py --self-serve --mode blend
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:  # the robot-side package: `pip install serve/robot_client` (numpy + msgpack + httpx, no torch)
    from vla_client import BlendingChunkBroker, ChunkBroker, RealTimeChunkBroker, RemotePolicy
except ImportError:  # a checkout of the project, nothing installed
    sys.path.insert(0, str(ROOT / "serve" / "robot_client"))
    from vla_client import BlendingChunkBroker, ChunkBroker, RealTimeChunkBroker, RemotePolicy


class ToyArm:
    """A numpy stand-in robot shaped by the server's ``GET /v1/metadata`` for one embodiment.

    Its cameras, image size, state and action dims are the embodiment's, so any served checkpoint
    accepts its observations.  The first 3 state dims hold an end-effector position that integrates
    the first 3 action dims; the last state dim mirrors the last action dim (the gripper); the rest stay 0.
    Each camera renders a red dot at the end-effector position.
    """

    def __init__(self, spec, seed: int = 0, default_size: int = 96):
        self.cameras = tuple(spec.cameras)
        self.height, self.width = tuple(spec.image_size) if spec.image_size else (default_size, default_size)
        self.state_dim, self.action_dim = spec.state_dim, spec.action_dim
        self.rng = np.random.default_rng(seed)
        self.pos = self.rng.uniform(-0.2, 0.2, 3)
        self.grip = 0.0

    def observe(self, prompt: str) -> dict:
        state = np.zeros(self.state_dim, np.float32)
        k = min(3, self.state_dim)
        state[:k] = self.pos[:k]
        if self.state_dim > 3:
            state[-1] = self.grip
        images = {}
        for i, cam in enumerate(self.cameras):
            img = np.full((self.height, self.width, 3), 40 + 30 * i, np.uint8)
            xy = (np.clip(self.pos[[0, 1 + i % 2]], -1, 1) + 1) / 2
            u, v = int(xy[0] * (self.width - 1)), int(xy[1] * (self.height - 1))
            img[max(v - 2, 0) : v + 3, max(u - 2, 0) : u + 3] = (255, 64, 64)
            images[cam] = img
        return {"images": images, "state": state, "prompt": prompt}

    def step(self, action: np.ndarray) -> None:
        action = np.asarray(action, np.float32)
        if action.shape != (self.action_dim,):
            raise ValueError(f"action of shape {list(action.shape)}, expected [{self.action_dim}]")
        k = min(3, self.action_dim)
        self.pos[:k] = np.clip(self.pos[:k] + 0.01 * np.clip(action[:k], -1, 1), -1, 1)
        self.grip = float(np.clip(action[-1], -1, 1))


def run(url: str, args: argparse.Namespace) -> int:
    with RemotePolicy(url, api_key=args.api_key, timeout_s=args.timeout, retries=args.retries) as remote:
        meta = remote.metadata
        name = args.embodiment or meta.default_embodiment
        if name not in meta.embodiments:
            raise SystemExit(f"--embodiment {name!r}: the server has {sorted(meta.embodiments)}")
        spec = meta.embodiments[name]
        print(
            f"server {url}: model {meta.model!r}, embodiment {name} cameras={list(spec.cameras)} "
            f"state_dim={spec.state_dim} action_dim={spec.action_dim} horizon={meta.action_horizon} "
            f"execute={spec.execute_horizon}"
        )
        mode = "sync" if args.no_blend else args.mode
        if mode is None:
            mode = "rtc" if meta.extra.get("real_time_chunking") else "blend"
        if mode == "sync":
            broker = ChunkBroker(remote, embodiment=name)
        elif mode == "blend":
            broker = BlendingChunkBroker(remote, embodiment=name, prefetch_steps=args.prefetch)
        else:
            broker = RealTimeChunkBroker(remote, mode="rtc", embodiment=name, control_hz=args.hz, margin_steps=1)
        print(f"mode {mode}")
        arm = ToyArm(spec)
        period = 1.0 / args.hz
        late, tick_ms = 0, []
        next_t = time.perf_counter()
        for _ in range(args.steps):
            t0 = time.perf_counter()
            action = broker.act(arm.observe(args.prompt))
            arm.step(np.asarray(action))
            tick_ms.append((time.perf_counter() - t0) * 1000)
            next_t += period
            sleep = next_t - time.perf_counter()
            if sleep > 0:
                time.sleep(sleep)
            else:
                late += 1
                next_t = time.perf_counter()
        if hasattr(broker, "close"):
            broker.close()
        ticks = np.asarray(tick_ms)
        if isinstance(broker, RealTimeChunkBroker):
            delays = [ts - tq for tq, ts in broker.switches[1:]]
            print(f"measured round trip max {1000 * max(broker.latencies_s):.0f} ms -> planned delay "
                  f"{broker.delay} ticks; switches after {delays} old actions")
        print(
            f"{args.steps} ticks at {args.hz:g} Hz: {broker.queries} queries, "
            f"stalls {getattr(broker, 'stalls', 'n/a')}, late ticks {late}, "
            f"act() p50 {np.percentile(ticks, 50):.2f} ms p99 {np.percentile(ticks, 99):.2f} ms "
            f"max {ticks.max():.1f} ms; "
            f"final eef {np.round(arm.pos, 3).tolist()}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument(
        "--self-serve", action="store_true", help="serve the numpy stand-in policy on loopback for this run"
    )
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--embodiment", default=None)
    ap.add_argument("--prompt", default="pick up the red cube")
    ap.add_argument("--hz", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument(
        "--prefetch", type=int, default=3, help="start the next query this many ticks before the chunk ends"
    )
    ap.add_argument("--mode", choices=("sync", "blend", "rtc"), default=None,
                    help="chunk execution (default: rtc when the server supports it, else blend)")
    ap.add_argument("--no-blend", action="store_true", help="same as --mode sync")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--retries", type=int, default=2)
    args = ap.parse_args(argv)
    if args.self_serve:  # server side: needs the full project
        sys.path.insert(0, str(ROOT))
        from serve.server import running_server
        from serve.toy_policy import ToyPolicy

        ctx = running_server(ToyPolicy(call_ms=40.0), max_wait_ms=0.0)
    else:
        ctx = contextlib.nullcontext(None)
    with ctx as srv:
        return run(srv.url if srv else args.url, args)


if __name__ == "__main__":
    sys.exit(main())
