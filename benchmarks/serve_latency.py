"""Serving benchmark: server overhead per transport, bytes on the wire, batching throughput, stress.

Starts ``vla serve`` processes on 127.0.0.1 (random free ports; no other traffic) and prints, side by side:
  1. p50/p99 server overhead (round trip incl. client encode/decode, minus the server's model time)
     for one client sending 2 x 224x224 RGB images + state over HTTP-msgpack, HTTP-JSON and the openpi
     WebSocket (server with --max-wait-ms 0, so no batching wait is counted);
  2. bytes on the wire per request / reply vs an OpenVLA-style JSON body with base64 arrays;
  3. requests/s with 8 concurrent clients, batched (--max-batch 8) vs unbatched (--max-batch 1), for
     the real VLAPolicy(tiny_config) on this CPU and for an accelerator-like stand-in whose forward
     pass costs the same for a batch as for one observation (--toy --toy-call-ms);
  4. 8 clients x N requests against the batched server: errors must be zero.

    python benchmarks/serve_latency.py            # full run (~5 min on 2 busy cores)
    python benchmarks/serve_latency.py --quick    # smaller counts
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serve import wire  # noqa: E402
from serve.client import RemotePolicy  # noqa: E402
from serve.toy_policy import toy_embodiments  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def vla_serve(*args: str):
    """A `vla serve` process on a free loopback port (torch limited to 1 thread); yields its URL."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "vla.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vla serve exited: {proc.stdout.read()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("vla serve did not come up")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def make_obs(rng: np.random.Generator, size: int = 224) -> dict:
    spec = toy_embodiments()[0]
    return {
        "images": {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in spec.cameras},
        "state": rng.standard_normal(spec.state_dim).astype(np.float32),
        "prompt": "pick up the red cube and place it in the bowl",
    }


def openvla_style_body(obs: dict) -> bytes:
    """JSON with base64 arrays (json_numpy-like), the way OpenVLA's REST deploy script sends images."""

    def b64(a: np.ndarray) -> dict:
        return {
            "__numpy__": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode(),
            "dtype": a.dtype.str,
            "shape": list(a.shape),
        }

    return json.dumps(
        {
            "images": {c: b64(v) for c, v in obs["images"].items()},
            "state": b64(obs["state"]),
            "instruction": obs["prompt"],
        }
    ).encode()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


# -- 1 + 2: overhead and bytes ------------------------------------------------------------------
def measure_overhead(url: str, obs: dict, n: int, n_json: int) -> dict[str, dict]:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    out: dict[str, dict] = {}
    for name in ("HTTP-msgpack", "HTTP-JSON"):
        with RemotePolicy(url, fmt="msgpack" if name == "HTTP-msgpack" else "json") as remote:
            for _ in range(2):
                remote.act(obs, seed=0)
            rtts, over = [], []
            for i in tqdm(range(n if name == "HTTP-msgpack" else n_json), desc=name, leave=False, mininterval=5):
                t = time.perf_counter()
                res = remote.act(obs, seed=i)
                rtt = (time.perf_counter() - t) * 1000
                rtts.append(rtt)
                over.append(rtt - res.timing["model_ms"])
            out[name] = {"rtt": rtts, "overhead": over, "req_bytes": res.bytes_sent, "rep_bytes": res.bytes_received}
    ws = WebsocketClientPolicy("127.0.0.1", int(url.rsplit(":", 1)[1]))
    for _ in range(5):
        ws.infer({**obs, "seed": 0})
    rtts, over = [], []
    for i in tqdm(range(n), desc="WebSocket", leave=False, mininterval=5):
        t = time.perf_counter()
        r = ws.infer({**obs, "seed": i})
        rtt = (time.perf_counter() - t) * 1000
        rtts.append(rtt)
        over.append(rtt - r["server_timing"]["infer_ms"])
    rep = wire.packb({k: v for k, v in r.items()})
    out["WebSocket"] = {
        "rtt": rtts,
        "overhead": over,
        "req_bytes": len(wire.packb({**obs, "seed": 0})),
        "rep_bytes": len(rep),
    }
    ws._ws.close()
    return out


# -- 3 + 4: concurrent clients --------------------------------------------------------------------
def run_clients(url: str, obs: dict, clients: int, per_client: int, desc: str) -> dict:
    errors: list[str] = []
    lock = threading.Lock()
    bar = tqdm(total=clients * per_client, desc=desc, leave=False, mininterval=5)
    barrier = threading.Barrier(clients)
    expect = None

    def worker(c: int) -> None:
        nonlocal expect
        with RemotePolicy(url, timeout_s=60, retries=0) as remote:
            barrier.wait()
            for i in range(per_client):
                try:
                    res = remote.act(obs, seed=c * 100000 + i)
                    if res.actions.shape != (res.actions.shape[0], 7) or not np.all(np.isfinite(res.actions)):
                        raise ValueError(f"bad actions {res.actions.shape}")
                except Exception as e:  # counted, not raised: the figure is the error count
                    with lock:
                        errors.append(f"client {c} req {i}: {type(e).__name__}: {e}")
                with lock:
                    bar.update(1)

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    elapsed = time.perf_counter() - t
    bar.close()
    hist = httpx.get(url + "/healthz").json()["batch_sizes"]
    return {
        "rps": clients * per_client / elapsed,
        "errors": errors,
        "elapsed": elapsed,
        "batch_sizes": hist,
        "n": clients * per_client,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="smaller counts (latency 40, throughput 10/client, stress 100/client)"
    )
    ap.add_argument("--latency-requests", type=int, default=150)
    ap.add_argument("--json-requests", type=int, default=30, help="HTTP-JSON is slow for 224² images (nested lists)")
    ap.add_argument("--throughput-requests", type=int, default=30, help="per client")
    ap.add_argument("--stress-requests", type=int, default=500, help="per client")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument(
        "--toy-call-ms", type=float, default=75.0, help="accelerator-like stand-in: cost of one forward pass"
    )
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server processes are stopped too
    if args.quick:
        args.latency_requests, args.json_requests, args.throughput_requests, args.stress_requests = 40, 10, 10, 100
    rng = np.random.default_rng(0)
    obs = make_obs(rng)

    import torch

    torch.set_num_threads(1)
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "tiny"
        VLAPolicy.create(tiny_config(), embodiments=toy_embodiments(), seed=0).save_pretrained(ckpt)
        print(
            "model: VLAPolicy(tiny_config) checkpoint, torch 1 thread, CPU; "
            "observation: 2 x 224x224x3 uint8 + state[8] + prompt"
        )

        with vla_serve("--checkpoint", str(ckpt), "--max-batch", "8", "--max-wait-ms", "0") as url:
            lat = measure_overhead(url, obs, args.latency_requests, args.json_requests)
        tp = {}
        for label, extra in (
            ("batched (max-batch 8, wait 20 ms)", ["--max-batch", "8", "--max-wait-ms", "20"]),
            ("unbatched (max-batch 1)", ["--max-batch", "1"]),
        ):
            with vla_serve("--checkpoint", str(ckpt), *extra) as url:
                run_clients(url, obs, args.clients, 2, "warmup")
                tp[("VLAPolicy tiny, CPU", label)] = run_clients(
                    url, obs, args.clients, args.throughput_requests, label
                )
            with vla_serve("--toy", "--toy-call-ms", str(args.toy_call_ms), *extra) as url:
                tp[(f"stand-in, {args.toy_call_ms:g} ms/forward", label)] = run_clients(
                    url, obs, args.clients, args.throughput_requests, label
                )
        with vla_serve("--checkpoint", str(ckpt), "--max-batch", "8", "--max-wait-ms", "20") as url:
            stress = run_clients(url, obs, args.clients, args.stress_requests, "stress")

    print("\n== 1. server overhead = round trip (incl. client encode/decode) - model time, 1 client, ms ==")
    print(
        f"{'transport':<14}{'n':>5}{'overhead p50':>14}{'overhead p99':>14}"
        f"{'RTT p50':>10}{'RTT p99':>10}{'model p50':>11}"
    )
    for name, d in lat.items():
        model = [r - o for r, o in zip(d["rtt"], d["overhead"])]
        print(
            f"{name:<14}{len(d['rtt']):>5}{pct(d['overhead'], 50):>14.2f}{pct(d['overhead'], 99):>14.2f}"
            f"{pct(d['rtt'], 50):>10.1f}{pct(d['rtt'], 99):>10.1f}{pct(model, 50):>11.1f}"
        )

    ov = len(openvla_style_body(obs))
    print("\n== 2. bytes on the wire per request (reply) ==")
    print(f"{'format':<28}{'request':>12}{'vs OpenVLA-style':>18}{'reply':>10}")
    for name, d in lat.items():
        print(f"{name:<28}{d['req_bytes']:>12,}{d['req_bytes'] / ov:>17.2f}x{d['rep_bytes']:>10,}")
    print(f"{'OpenVLA-style JSON-base64':<28}{ov:>12,}{1.0:>17.2f}x{'':>10}")

    print(f"\n== 3. throughput, {args.clients} concurrent clients (HTTP-msgpack) ==")
    print(f"{'policy':<28}{'batched req/s':>15}{'unbatched req/s':>17}{'speedup':>9}   batch sizes (batched)")
    for pol in dict.fromkeys(k[0] for k in tp):
        b = tp[(pol, "batched (max-batch 8, wait 20 ms)")]
        u = tp[(pol, "unbatched (max-batch 1)")]
        print(f"{pol:<28}{b['rps']:>15.1f}{u['rps']:>17.1f}{b['rps'] / u['rps']:>8.2f}x   {b['batch_sizes']}")
        for e in (b["errors"] + u["errors"])[:3]:
            print("   error:", e)

    print(
        f"\n== 4. stress: {args.clients} clients x {args.stress_requests} requests, batched server, VLAPolicy tiny =="
    )
    print(
        f"requests {stress['n']}, errors {len(stress['errors'])}, {stress['rps']:.1f} req/s, "
        f"{stress['elapsed']:.1f} s, batch sizes {stress['batch_sizes']}"
    )
    for e in stress["errors"][:5]:
        print("   error:", e)
    return 1 if stress["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
