"""Small synthetic datasets for the finetune tests and benchmarks (real RLDS files via the data pipeline's writer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vla.types import EmbodimentSpec


def toy_spec(name: str = "toy_arm", action_dim: int = 7, state_dim: int = 9,
             cameras: tuple[str, ...] = ("agentview", "wrist")) -> EmbodimentSpec:
    return EmbodimentSpec(name=name, cameras=cameras, state_dim=state_dim, action_dim=action_dim,
                          gripper_dims=(action_dim - 1,), image_size=(64, 64))


def write_toy_dataset(out_dir: str | os.PathLike, name: str = "toy_arm", episodes: int = 4, steps: int = 24,
                      seed: int = 0, spec: EmbodimentSpec | None = None, size: int = 64) -> Path:
    """An RLDS dataset whose actions depend on the state and images (learnable, deterministic)."""
    from data_pipelines.rlds.writer import write_rlds

    spec = spec or toy_spec(name)
    rng = np.random.default_rng(seed)
    eps = []
    for e in range(episodes):
        state = rng.normal(0, 1, (steps, spec.state_dim)).astype(np.float32)
        w = rng.normal(0, 0.3, (spec.state_dim, spec.action_dim)).astype(np.float32)
        actions = np.tanh(state @ w).astype(np.float32)
        actions[:, -1] = np.sign(state[:, 0])
        obs = {"state": state}
        for c in spec.cameras:
            img = rng.integers(0, 255, (steps, size, size, 3), dtype=np.uint8)
            img[:, : size // 2] = (state[:, :1, None, None] > 0) * 200
            obs[c] = img
        eps.append({"steps": {"observation": obs, "action": actions,
                              "language_instruction": "lift the cube" if e % 2 == 0 else "pick up the block"},
                    "metadata": {"episode_id": f"{name}_{e}"}})
    return write_rlds(eps, out_dir, name, spec, episodes_per_shard=2)


ROOT = Path(__file__).resolve().parents[1]


def ema_resume_run(variant: str, data_dir: str | os.PathLike, out_dir: str | os.PathLike):
    """One EMA training run of the resume tests (the same for the uninterrupted, killed and resumed runs):
    ``variant``: ``plain`` | ``worker`` (one data-loader worker) | ``lora`` | ``2ranks`` (spawned data-parallel
    ranks) | ``accum2`` (one process with the global batch of ``2ranks``); both of the last two with the strong
    batch augmentation (seeded per global micro-batch, so they augment alike)."""
    import functools

    import torch

    from data_pipelines.augment import STRONG
    from data_pipelines.pipeline import DatasetConfig, PipelineConfig
    from finetune.config import LoraSettings, TrainConfig
    from finetune.launch import train_processes
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    torch.set_num_threads(1)
    data = PipelineConfig(datasets=(DatasetConfig(str(data_dir)),), horizon=8, image_size=(64, 64), seed=0)
    cfg = TrainConfig(steps=12, batch_size=4, warmup_steps=2, lr=1e-3, ema_decay=0.9, save_every=4, keep_last=2,
                      progress=False, tensorboard=False, seed=0, num_workers=1 if variant == "worker" else 0,
                      grad_accum=2 if variant == "accum2" else 1,
                      lora=LoraSettings(rank=4, alpha=8) if variant == "lora" else None,
                      augment=STRONG if variant in ("2ranks", "accum2") else None)
    make = functools.partial(VLAPolicy.create, tiny_config(), [toy_spec()], seed=0)
    kw = {"embodiment": "lora_arm"} if variant == "lora" else {}
    return train_processes(make, data, cfg, out_dir, processes=2 if variant == "2ranks" else 1, **kw)


def kill_after_first_checkpoint(variant: str, data: Path, out: Path) -> None:
    """Run :func:`ema_resume_run` in a subprocess group and SIGKILL all of it once the step-4 checkpoint exists."""
    import signal
    import subprocess
    import sys
    import time

    code = "import sys; from tests.finetune_helpers import ema_resume_run; ema_resume_run(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", code, variant, str(data), str(out)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    try:
        while not (out / "checkpoints" / "step_000004").exists():
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"no checkpoint before exit/timeout: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (out / "policy").exists(), "training finished before it could be killed"


def assert_same_run(run: Path, reference: Path, weights: str = "model.safetensors") -> None:
    """``run`` (killed and resumed) repeated ``reference`` (uninterrupted): the loss and lr of every step, and the
    exported EMA weights; its last checkpoint keeps the live weights, which differ from the EMA."""
    import json

    import pytest
    import torch
    from safetensors.torch import load_file

    after, ref = ([json.loads(x) for x in (p / "losses.jsonl").read_text().splitlines()] for p in (run, reference))
    assert [r["step"] for r in after] == [r["step"] for r in ref] == list(range(1, 13))
    for a, b in zip(after, ref):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6, abs=1e-7), (a, b)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    exported = load_file(str(run / "policy" / weights))
    expected = load_file(str(reference / "policy" / weights))
    live = load_file(str(run / "checkpoints" / "step_000012" / weights))
    assert exported.keys() == expected.keys() == live.keys()
    for k in exported:  # the export carries the same EMA weights as the uninterrupted run's ...
        assert torch.allclose(exported[k], expected[k], rtol=1e-5, atol=1e-6), k
    # ... which are not the live weights the checkpoint keeps for resume
    assert any(not torch.allclose(exported[k], live[k]) for k in exported if exported[k].is_floating_point())
