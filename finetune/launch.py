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
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def _unguarded_main_call() -> str | None:
    """``file:line`` of the ``__main__`` script's top-level statement that is running now when it is not under
    ``if __name__ == "__main__":`` (spawned ranks re-import the script, so such a call would run again in each
    rank and kill it), else None (guarded, interactive, ``python -c``)."""
    import ast
    import inspect
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not os.path.isfile(path):
        return None
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_guard(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return None
    return f"{path}:{line}"


def _is_main_guard(test) -> bool:
    import ast

    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


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
    where = _unguarded_main_call()
    if where is not None:
        raise RuntimeError(
            f"train_processes(processes={processes}) is called at the top level of the script {where}: the spawned "
            "training ranks re-import the script and would run it again. Put the call under\n"
            "    if __name__ == \"__main__\":\n"
            "(and keep make_policy a module-level function or functools.partial) as for any multiprocessing code")
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
