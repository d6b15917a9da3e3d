"""Serving benchmark: server overhead per transport, bytes on the wire, batching throughput, stress.

Starts ``vla serve`` processes on 127.0.0.1 (random free ports; no other traffic) and prints, side by side:
  1. p50/p99 overhead for one client sending 2 x 224x224 RGB frames (rendered from the robosuite Lift scene,
     so JPEG sizes are realistic) + state: round trip incl. client encode/decode minus model time, and the
     server's own share (server_ms - model_ms: parse, decode, validate, encode), over HTTP-msgpack raw /
     PNG / JPEG, HTTP-JSON nested lists / base64 JPEG, and the openpi WebSocket (--max-wait-ms 0);
  2. bytes on the wire per request / reply (raw vs PNG vs JPEG) vs an OpenVLA-style JSON-base64-array body;
  3. the default model served fp32 without / with prepacked linears (--no-prepack vs the default) / --compile /
     --quantize int8 / bf16: model time p50/p99 at 1 client and requests/s at 1 and 8 clients; batching speed-up at
     8 clients (--max-batch 8 vs 1) for fp32 with and without prepacked linears and for
     an accelerator-like stand-in whose forward costs the same for a batch as for one (--toy --toy-call-ms);
  4. 8 clients x N requests against a batched tiny-model server: errors must be zero.

    python benchmarks/serve_latency.py            # full run (~10 min on 2 busy cores)
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


def sim_frames(size: int = 224) -> tuple[list[np.ndarray], str]:
    """Two camera frames of the robosuite Lift scene (agentview, wrist); a smooth synthetic scene without sim."""
    try:
        os.environ.setdefault("MUJOCO_GL", "egl")
        from sim_eval.envs import make_env

        env = make_env("Lift", image_size=size)
        obs = env.reset(seed=0)
        return [obs["images"][c] for c in env.spec.cameras][:2], "robosuite Lift render"
    except Exception as e:  # no MuJoCo / GL here: gradients + shapes (JPEG-friendly like a real scene)
        yy, xx = np.mgrid[0:size, 0:size]
        frame = np.stack([xx, yy, (xx + yy) // 2], -1).astype(np.uint8)
        frame[(yy - size // 2) ** 2 + (xx - size // 3) ** 2 < (size // 8) ** 2] = (200, 30, 30)
        return [frame, np.ascontiguousarray(frame[::-1])], f"synthetic scene (no sim: {type(e).__name__})"


def make_obs(rng: np.random.Generator, frames: list[np.ndarray]) -> dict:
    spec = toy_embodiments()[0]
    return {
        "images": dict(zip(spec.cameras, frames)),
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
JPEG_Q = 90
TRANSPORTS = {  # name -> (RemotePolicy fmt, image_format, request count: "n" or the JSON count)
    "HTTP-msgpack raw": ("msgpack", "raw", "n"),
    "HTTP-msgpack PNG": ("msgpack", "png", "n"),
    f"HTTP-msgpack JPEG q{JPEG_Q}": ("msgpack", "jpeg", "n"),
    f"HTTP-JSON b64 JPEG q{JPEG_Q}": ("json", "jpeg", "n"),
    "HTTP-JSON nested lists": ("json", "raw", "json"),
}


def jpeg_sizes(obs: dict, qualities=(95, 90, 75, 50)) -> dict[int, int]:
    """Request bytes (msgpack) at each JPEG quality."""
    return {q: len(wire.observation_to_msgpack(obs, image_format="jpeg", jpeg_quality=q, seed=0)) for q in qualities}
def measure_overhead(url: str, obs: dict, n: int, n_json: int) -> dict[str, dict]:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    out: dict[str, dict] = {}
    for name, (fmt, images, count) in TRANSPORTS.items():
        with RemotePolicy(url, fmt=fmt, image_format=images, jpeg_quality=JPEG_Q) as remote:
            for _ in range(2):
                remote.act(obs, seed=0)
            rtts, over, server = [], [], []
            for i in tqdm(range(n if count == "n" else n_json), desc=name, leave=False, mininterval=5):
                t = time.perf_counter()
                res = remote.act(obs, seed=i)
                rtt = (time.perf_counter() - t) * 1000
                rtts.append(rtt)
                over.append(rtt - res.timing["model_ms"])
                server.append(res.timing["server_ms"] - res.timing["model_ms"])
            out[name] = {"rtt": rtts, "overhead": over, "server": server, "req_bytes": res.bytes_sent,
                         "rep_bytes": res.bytes_received}
    ws = WebsocketClientPolicy("127.0.0.1", int(url.rsplit(":", 1)[1]))
    for _ in range(5):
        ws.infer({**obs, "seed": 0})
    rtts, over, server = [], [], []
    for i in tqdm(range(n), desc="WebSocket", leave=False, mininterval=5):
        t = time.perf_counter()
        r = ws.infer({**obs, "seed": i})
        rtt = (time.perf_counter() - t) * 1000
        rtts.append(rtt)
        over.append(rtt - r["server_timing"]["infer_ms"])
        server.append(r["server_timing"]["server_ms"] - r["server_timing"]["infer_ms"])
    rep = wire.packb({k: v for k, v in r.items()})
    out["WebSocket raw"] = {
        "rtt": rtts,
        "overhead": over,
        "server": server,
        "req_bytes": len(wire.packb({**obs, "seed": 0})),
        "rep_bytes": len(rep),
    }
    ws._ws.close()
    return out


VARIANT_FLAGS = {"nopack": ["--no-prepack"], "fp32": [], "compiled": ["--compile"], "int8": ["--quantize", "int8"],
                 "bf16": ["--quantize", "bf16"]}


# -- 3 + 4: concurrent clients --------------------------------------------------------------------
def run_clients(url: str, obs: dict, clients: int, per_client: int, desc: str) -> dict:
    errors: list[str] = []
    lock = threading.Lock()
    bar = tqdm(total=clients * per_client, desc=desc, leave=False, mininterval=5)
    start: list[float] = []  # the clock starts when every client is connected (not counting client setup)
    barrier = threading.Barrier(clients, action=lambda: start.append(time.perf_counter()))
    expect = None

    model_ms: list[float] = []

    def worker(c: int) -> None:
        nonlocal expect
        with RemotePolicy(url, timeout_s=120, retries=0) as remote:
            barrier.wait()
            for i in range(per_client):
                try:
                    res = remote.act(obs, seed=c * 100000 + i)
                    model_ms.append(res.timing["model_ms"])
                    if res.actions.shape != (res.actions.shape[0], 7) or not np.all(np.isfinite(res.actions)):
                        raise ValueError(f"bad actions {res.actions.shape}")
                except Exception as e:  # counted, not raised: the figure is the error count
                    with lock:
                        errors.append(f"client {c} req {i}: {type(e).__name__}: {e}")
                with lock:
                    bar.update(1)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    elapsed = time.perf_counter() - start[0]
    bar.close()
    hist = httpx.get(url + "/healthz").json()["batch_sizes"]
    return {
        "rps": clients * per_client / elapsed,
        "errors": errors,
        "elapsed": elapsed,
        "batch_sizes": hist,
        "n": clients * per_client,
        "model_ms": model_ms,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="smaller counts (latency 40, throughput 6/client, stress 100/client)"
    )
    ap.add_argument("--latency-requests", type=int, default=150)
    ap.add_argument("--json-requests", type=int, default=30, help="HTTP-JSON is slow for 224² images (nested lists)")
    ap.add_argument("--throughput-requests", type=int, default=12, help="per client, default model")
    ap.add_argument("--stress-requests", type=int, default=500, help="per client")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument(
        "--toy-call-ms", type=float, default=75.0, help="accelerator-like stand-in: cost of one forward pass"
    )
    ap.add_argument("--variants", default="nopack,fp32,int8,bf16",
                    help=f"default-model variants to serve (section 3), of {','.join(VARIANT_FLAGS)}")
    ap.add_argument("--unbatched-variants", default="nopack,fp32",
                    help="variants also served with --max-batch 1 (the batching speed-up)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server processes are stopped too
    if args.quick:
        args.latency_requests, args.json_requests, args.throughput_requests, args.stress_requests = 40, 10, 6, 100
    frames, source = sim_frames()
    obs = make_obs(np.random.default_rng(0), frames)

    import torch

    torch.set_num_threads(1)
    from vla.config import default_config, tiny_config
    from vla.policy import VLAPolicy

    with tempfile.TemporaryDirectory() as tmp:
        tiny, full = Path(tmp) / "tiny", Path(tmp) / "default"
        VLAPolicy.create(tiny_config(), embodiments=toy_embodiments(), seed=0).save_pretrained(tiny)
        VLAPolicy.create(default_config(), embodiments=toy_embodiments(), seed=0).save_pretrained(full)
        print(f"observation: 2 x 224x224x3 uint8 ({source}) + state[8] + prompt; torch 1 thread per server, CPU, "
              f"load average {os.getloadavg()[0]:.1f}")

        with vla_serve("--checkpoint", str(tiny), "--max-batch", "8", "--max-wait-ms", "0") as url:
            lat = measure_overhead(url, obs, args.latency_requests, args.json_requests)
        variants = {}
        for name in args.variants.split(","):
            flags = VARIANT_FLAGS[name]
            with vla_serve("--checkpoint", str(full), "--max-batch", "8", "--max-wait-ms", "20", *flags) as url:
                run_clients(url, obs, 1, 2, "warmup")
                one = run_clients(url, obs, 1, args.throughput_requests * 2, f"{name} 1 client")
                many = run_clients(url, obs, args.clients, args.throughput_requests, f"{name} {args.clients} clients")
                variants[name] = (one, many)
        unbatched = {}
        for name in args.unbatched_variants.split(","):
            with vla_serve("--checkpoint", str(full), "--max-batch", "1", *VARIANT_FLAGS[name]) as url:
                run_clients(url, obs, 1, 2, "warmup")
                unbatched[name] = run_clients(url, obs, args.clients, args.throughput_requests, f"{name} unbatched")
        toy_rows = {}
        toy_flags = {"batched": ["--max-batch", "8", "--max-wait-ms", "20"], "unbatched": ["--max-batch", "1"]}
        for label, extra in toy_flags.items():
            with vla_serve("--toy", "--toy-call-ms", str(args.toy_call_ms), *extra) as url:
                toy_rows[label] = run_clients(url, obs, args.clients, args.throughput_requests, f"toy {label}")
        with vla_serve("--checkpoint", str(tiny), "--max-batch", "8", "--max-wait-ms", "20") as url:
            stress = run_clients(url, obs, args.clients, args.stress_requests, "stress")

    print_results(args, obs, lat, variants, unbatched, toy_rows, stress)
    return 1 if stress["errors"] else 0


def print_results(args, obs, lat, variants, unbatched, toy_rows, stress) -> None:
    print("\n== 1. overhead, 1 client, ms (tiny model; overhead = round trip incl. client encode/decode - model; "
          "server = server_ms - model_ms) ==")
    print(f"{'transport':<26}{'n':>5}{'overhead p50':>14}{'p99':>8}{'server p50':>12}{'p99':>8}{'RTT p50':>9}")
    for name, d in lat.items():
        print(f"{name:<26}{len(d['rtt']):>5}{pct(d['overhead'], 50):>14.2f}{pct(d['overhead'], 99):>8.2f}"
              f"{pct(d['server'], 50):>12.2f}{pct(d['server'], 99):>8.2f}{pct(d['rtt'], 50):>9.1f}")

    ov = len(openvla_style_body(obs))
    raw = lat["HTTP-msgpack raw"]["req_bytes"]
    print("\n== 2. bytes on the wire per request (reply) ==")
    print(f"{'format':<28}{'request':>12}{'raw / this':>12}{'vs OpenVLA-style':>18}{'reply':>10}")
    for name, d in lat.items():
        print(f"{name:<28}{d['req_bytes']:>12,}{raw / d['req_bytes']:>11.1f}x{d['req_bytes'] / ov:>17.2f}x"
              f"{d['rep_bytes']:>10,}")
    for q, n in jpeg_sizes(obs).items():
        print(f"{f'msgpack JPEG q{q}':<28}{n:>12,}{raw / n:>11.1f}x{n / ov:>17.2f}x{'':>10}")
    print(f"{'OpenVLA-style JSON-base64':<28}{ov:>12,}{raw / ov:>11.1f}x{1.0:>17.2f}x{'':>10}")

    print("\n== 3. default model served: " + " / ".join(variants) + " (HTTP-msgpack raw, --max-batch 8 "
          "--max-wait-ms 20; nopack = --no-prepack, fp32 = the default prepacked linears) ==")
    print(f"{'variant':<12}{'model p50 ms':>13}{'p99':>8}{'req/s 1 client':>16}{f'req/s {args.clients} clients':>18}"
          f"{'x 1 client':>11}   batch sizes")
    for name, (one, many) in variants.items():
        print(f"{name:<12}{pct(one['model_ms'], 50):>13.1f}{pct(one['model_ms'], 99):>8.1f}{one['rps']:>16.2f}"
              f"{many['rps']:>18.2f}{many['rps'] / one['rps']:>10.2f}x   {many['batch_sizes']}")
        for e in (one["errors"] + many["errors"])[:3]:
            print("   error:", e)
    print(f"\nbatching speed-up at {args.clients} clients (--max-batch 8 vs --max-batch 1):")
    for name, u in unbatched.items():
        if name in variants:
            b = variants[name][1]
            print(f"  default model {name:<16}{b['rps']:.2f} vs {u['rps']:.2f} req/s = {b['rps'] / u['rps']:.2f}x")
    if "nopack" in unbatched and "fp32" in variants:
        b, u = variants["fp32"][1], unbatched["nopack"]
        print(f"  fp32 batched vs nopack unbatched {b['rps']:.2f} vs {u['rps']:.2f} req/s = {b['rps'] / u['rps']:.2f}x")
    tb, tu = toy_rows["batched"], toy_rows["unbatched"]
    print(f"  stand-in {args.toy_call_ms:g} ms/forward        {tb['rps']:.2f} vs {tu['rps']:.2f} req/s = "
          f"{tb['rps'] / tu['rps']:.2f}x   {tb['batch_sizes']}")

    print(
        f"\n== 4. stress: {args.clients} clients x {args.stress_requests} requests, batched server, VLAPolicy tiny =="
    )
    print(
        f"requests {stress['n']}, errors {len(stress['errors'])}, {stress['rps']:.1f} req/s, "
        f"{stress['elapsed']:.1f} s, batch sizes {stress['batch_sizes']}"
    )
    for e in stress["errors"][:5]:
        print("   error:", e)


if __name__ == "__main__":
    sys.exit(main())
