"""Data-parallel training from Python, without a launcher command: ``processes`` spawned ranks run
:func:`finetune.trainer.train` together (gloo on CPU cores, NCCL on GPUs), each on its own slice of
the same global batch, as ``accelerate launch --num_processes N`` would.

On a CPU machine this is how training uses every core: one process with several intra-op threads
gains little on the small tensors of a robot policy, while N single-threaded ranks train N slices
in parallel (``benchmarks/train_processes.py`` prints the two side by side).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any, Callable


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(rank: int, world: int, port: int, make_policy: Callable[[], Any], data, cfg, out_dir: str,
               threads: int, kwargs: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS=str(threads))
    import torch

    from finetune.trainer import train

    torch.set_num_threads(threads)
    res = train(make_policy(), data, cfg, out_dir, log=print if rank == 0 else (lambda _m: None), **kwargs)
    if rank == 0:
        summary = {f.name: getattr(res, f.name) for f in dataclasses.fields(res)
                   if f.name not in ("policy", "out_dir", "policy_dir")}
        (Path(out_dir) / "train_result.json").write_text(json.dumps(summary))


def train_processes(make_policy: Callable[[], Any], data, cfg, out_dir: str | os.PathLike, *, processes: int = 2,
                    threads: int = 1, **kwargs):
    """Train with ``processes`` data-parallel ranks on this machine; returns rank 0's ``TrainResult`` with the
    trained policy loaded from ``out_dir/policy``.

    ``make_policy`` builds the starting policy in each rank (it must be picklable, e.g. a
    ``functools.partial(VLAPolicy.create, config, specs, seed=0)``, and give every rank the same weights);
    ``cfg.batch_size`` is per rank, so the global batch is ``processes x batch_size``. Other keyword
    arguments go to :func:`finetune.trainer.train` (``resume``, ``embodiment``); with ``processes=1`` it
    is a plain in-process ``train`` call."""
    from finetune.trainer import TrainResult, train

    if processes < 1:
        raise ValueError(f"processes must be >= 1; got {processes}")
    if processes == 1:
        import torch

        torch.set_num_threads(threads)
        return train(make_policy(), data, cfg, out_dir, **kwargs)
    if kwargs.get("val_hook") is not None:
        raise ValueError("val_hook is not supported with processes > 1 (it would have to be picklable)")
    import pickle

    import torch.multiprocessing as tmp

    try:
        pickle.dumps(make_policy)
    except Exception as e:  # a lambda or closure cannot reach the spawned ranks
        raise ValueError(f"make_policy must be picklable to reach the {processes} spawned ranks (use a module-level "
                         f"function or functools.partial(VLAPolicy.create, config, specs, seed=0)): {e}") from e
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_result.json").unlink(missing_ok=True)
    tmp.start_processes(_rank_main, args=(processes, _free_port(), make_policy, data, cfg, str(out), threads, kwargs),
                        nprocs=processes, start_method="spawn")
    summary = json.loads((out / "train_result.json").read_text())
    from vla.policy import VLAPolicy

    policy_dir = out / "policy"
    return TrainResult(policy=VLAPolicy.from_pretrained(policy_dir), out_dir=out, policy_dir=policy_dir, **summary)
