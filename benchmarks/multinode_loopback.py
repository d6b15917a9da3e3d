"""Multi-node training shown on one machine: two ``accelerate launch`` "nodes" (``--num_machines 2
--machine_rank 0/1``, one process each, gloo over loopback) against one process at the same global batch.

Node 0 hosts the rendezvous at 127.0.0.1:PORT; node 1 joins it exactly as a second machine would join the
first machine's address.  Both write to one output directory (what a shared cluster file system gives;
only global rank 0 writes).  One process runs the same steps with --grad-accum 2 (global batch 2 x 2).
Prints the per-step losses side by side and exits 1 if any differs by more than --rtol.

    python benchmarks/multinode_loopback.py [--data RLDS_DIR] [--steps 3]

On a real cluster, run on every node (node i gets --machine_rank i; MASTER = node 0's address):

    accelerate launch --multi_gpu --num_machines N --machine_rank i --num_processes $((N * GPUS_PER_NODE)) \\
        --main_process_ip MASTER --main_process_port 29500 --mixed_precision bf16 \\
        -m vla.cli finetune --data DATA --out /shared/run ...
    # HF backbones too big for one GPU's memory: shard them with FSDP instead of DDP
    accelerate launch --use_fsdp --fsdp_sharding_strategy FULL_SHARD --fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP \\
        --fsdp_state_dict_type SHARDED_STATE_DICT --num_machines N --machine_rank i ... -m vla.cli finetune ...
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def finetune_args(data: str, out: Path, steps: int, accum: int) -> list[str]:
    return ["-m", "vla.cli", "finetune", "--preset", "tiny", "--data", data, "--out", str(out), "--steps", str(steps),
            "--batch-size", "2", "--grad-accum", str(accum), "--warmup", "1", "--threads", "1"]


def node_command(rank: int, port: int, data: str, out: Path, steps: int) -> list[str]:
    """One node's launcher (``accelerate.commands.launch`` is what the ``accelerate`` console script runs)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
            "--machine_rank", str(rank), "--num_processes", "2", "--main_process_ip", "127.0.0.1",
            "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no",
            *finetune_args(data, out, steps, 1)]


def losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(data: str, tmp: Path, steps: int, timeout: float = 600) -> tuple[list[dict], list[dict], dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    one = subprocess.run([sys.executable, *finetune_args(data, tmp / "one", steps, 2)], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if one.returncode:
        raise RuntimeError(f"one process failed:\n{one.stderr[-3000:]}")
    port = free_port()
    nodes = [subprocess.Popen(node_command(r, port, data, tmp / "two_nodes", steps), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = []
    try:
        for r, p in enumerate(nodes):
            outs.append(p.communicate(timeout=timeout)[0])
            if p.returncode:
                raise RuntimeError(f"node {r} failed (exit {p.returncode}):\n{outs[-1][-3000:]}")
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
    ckpt = sorted((tmp / "two_nodes" / "checkpoints").glob("step_*"))[-1]
    meta = json.loads((ckpt / "training_state" / "meta.json").read_text())
    return losses(tmp / "one"), losses(tmp / "two_nodes"), meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="RLDS dataset dir (default: a small synthetic one)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vla_multinode_") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            from tests.finetune_helpers import write_toy_dataset

            data = str(write_toy_dataset(tmp / "data", episodes=4, steps=16))
        one, two, meta = run(data, tmp, args.steps)
    print(f"\n2 nodes x 1 process (gloo, loopback rendezvous), batch 2 each vs 1 process batch 2 x grad-accum 2; "
          f"world_size in the checkpoint: {meta['world_size']}")
    print(f"{'step':>5}{'1 process':>14}{'2 nodes':>14}{'rel diff':>11}")
    worst = 0.0
    for a, b in zip(one, two):
        rel = abs(a["loss"] - b["loss"]) / max(abs(a["loss"]), 1e-12)
        worst = max(worst, rel)
        print(f"{a['step']:>5}{a['loss']:>14.6f}{b['loss']:>14.6f}{rel:>11.1e}")
    same = len(one) == len(two) == args.steps and worst <= args.rtol and meta["world_size"] == 2
    print(f"{'MATCH' if same else 'MISMATCH'}: worst relative difference {worst:.1e} (tolerance {args.rtol:g})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
