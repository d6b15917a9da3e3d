"""``vla serve``: serve a checkpoint over HTTP (/v1/act, /v1/metadata, /healthz) + openpi WebSocket."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="checkpoint directory (VLAPolicy.from_pretrained)")
    src.add_argument(
        "--toy", action="store_true", help="serve the deterministic numpy stand-in policy (client testing)"
    )
    parser.add_argument(
        "--toy-call-ms", type=float, default=0.0, help="with --toy: fixed cost per predict call (accelerator-like)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key", default=os.environ.get("VLA_API_KEY"), help="require this key (default: $VLA_API_KEY; none = open)"
    )
    parser.add_argument("--max-batch", type=int, default=8, help="most requests stacked into one forward pass")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="longest wait for a batch to fill")
    parser.add_argument(
        "--no-adaptive-batching",
        action="store_true",
        help="always wait up to --max-wait-ms (default: stop waiting once the batch is as large as recent ones)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=16.0, help="request body / WebSocket frame limit (413 above)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the action-expert step for batch size 1 (frozen weights; same actions; "
        "compiles at startup, ~20-60 s on CPU)",
    )
    parser.add_argument(
        "--quantize",
        default="none",
        choices=["none", "int8", "bf16"],
        help="int8: dynamic int8 linear layers (expert + language model); bf16: prepacked bf16 linears (fast with "
        "AVX512_BF16 / AMX); CPU; actions move slightly, see benchmarks/inference_latency.py",
    )
    parser.add_argument(
        "--no-prepack",
        action="store_true",
        help="keep plain nn.Linear layers (default on CPU: oneDNN-prepacked fp32 weights, same actions up to fp32 "
        "rounding, ~1.3x faster predict)",
    )
    parser.add_argument("--device", default=None, help="torch device for the checkpoint (default: the policy's choice)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _load(args: argparse.Namespace):
    if args.toy:
        from serve.toy_policy import ToyPolicy

        return ToyPolicy(call_ms=args.toy_call_ms)
    from vla.policy import VLAPolicy

    kwargs = {"device": args.device} if args.device else {}
    return VLAPolicy.from_pretrained(args.checkpoint, **kwargs)


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (SO_REUSEADDR), before the model loads; a ValueError naming a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise ValueError(f"--host {host} --port {port}: cannot bind: {e.strerror}") from None
            reason = "is already in use" if e.errno == errno.EADDRINUSE else "needs more privileges"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        free = s.getsockname()[1]
    raise ValueError(f"--port {port}: {host}:{port} {reason} (another server?); try --port {free}, which is free now")


def main(args: argparse.Namespace) -> int:
    from serve.server import ServeConfig, serve_forever

    if args.max_batch < 1:
        raise ValueError(f"--max-batch must be >= 1, got {args.max_batch}")
    if args.max_wait_ms < 0:
        raise ValueError(f"--max-wait-ms must be >= 0, got {args.max_wait_ms}")
    if args.checkpoint is not None:
        from vla.checkpoint import check_checkpoint_dir

        check_checkpoint_dir(args.checkpoint, "--checkpoint")
    from serve.speedups import SpeedupConfig

    if args.toy and (args.compile or args.quantize != "none"):
        raise ValueError("--compile / --quantize apply to a --checkpoint model, not --toy")
    speed = SpeedupConfig(compile=args.compile, quantize=args.quantize, prepack=not (args.toy or args.no_prepack))
    check_port_free(args.host, args.port)
    # our loggers at --log-level (per request at debug, 4xx at info); third-party libraries stay at warning
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("serve").setLevel(args.log_level.upper())
    policy = _load(args)
    if speed.enabled:
        from serve.speedups import apply_speedups

        print(f"vla serve: speed-ups {apply_speedups(policy, speed)}", flush=True)
    meta = policy.metadata
    print(
        f"vla serve: {meta.model or type(policy).__name__} embodiments={sorted(meta.embodiments)} "
        f"horizon={meta.action_horizon} on http://{args.host}:{args.port} (ws://{args.host}:{args.port}/) "
        f"auth={'api-key' if args.api_key else 'none'} "
        f"max_batch={args.max_batch} max_wait_ms={args.max_wait_ms}",
        flush=True,
    )
    cfg = ServeConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        adaptive_batching=not args.no_adaptive_batching,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        log_level=args.log_level,
    )
    serve_forever(policy, cfg)
    print("vla serve: stopped", flush=True)
    return 0
