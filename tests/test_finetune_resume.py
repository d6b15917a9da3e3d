"""Exact resume with EMA: a run killed with SIGKILL mid-way continues from its last checkpoint and its loss
and lr trajectory equal the uninterrupted run's (tiny model, CPU, fixed seeds) - from the CLI (with batch
augmentation: ``--augment strong``), with a
data-loader worker, with LoRA and with 2 data-parallel ranks. Checkpoints hold the live weights (resume);
the exported ``policy/`` holds the EMA weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.finetune_helpers import assert_same_run, ema_resume_run, kill_after_first_checkpoint, write_toy_dataset
from vla.cli import main as vla_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("data"), episodes=4, steps=20)


def _cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vla.cli", "finetune", "--base", "embedded", "--preset", "tiny", "--data", str(data),
            "--out", str(out), "--steps", "8", "--batch-size", "4", "--save-every", "3", "--keep-last", "2",
            "--warmup", "2", "--threads", "1", "--seed", "0", "--ema", "0.9", "--lr", "1e-3",
            "--augment", "strong"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_cli_ema_sigkill_then_resume_matches_uninterrupted_run(toy_data, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert vla_main(_cmd(toy_data, ref)[3:]) == 0  # the uninterrupted run in-process (the same code, no startup)
    reference = _losses(ref)
    assert [r["step"] for r in reference] == list(range(1, 9))

    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd(toy_data, run), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # kill once a checkpoint exists and training went past it
            if (run / "losses.jsonl").exists() and len(_losses(run)) >= 4 and (run / "checkpoints").exists():
                break
            if proc.poll() is not None:
                pytest.fail("training finished before it could be killed")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    killed_at = len(_losses(run))
    assert 4 <= killed_at < 8
    assert not (run / "policy").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))[-1] == "step_000003" \
        or killed_at >= 6

    capsys.readouterr()
    assert vla_main(_cmd(toy_data, run)[3:]) == 0
    assert "resuming from" in capsys.readouterr().out
    after = _losses(run)
    assert [r["step"] for r in after] == list(range(1, 9))  # the step count continued, no gap or repeat
    for a, b in zip(after, reference):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6, abs=1e-7), (a, b)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    # keep-last-K and the final policy
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts[-1] == "step_000008" and len(ckpts) == 2
    assert (run / "policy" / "config.json").exists() and (run / "loss.png").exists()
    assert list((run / "tensorboard").iterdir())


@pytest.fixture(scope="module")
def baselines(toy_data, tmp_path_factory):
    """Uninterrupted runs, one per distinct trajectory (a data-loader worker reads the in-process stream)."""
    root = tmp_path_factory.mktemp("baselines")
    runs = {v: root / v for v in ("plain", "lora")}
    for v, out in runs.items():
        ema_resume_run(v, toy_data, out)
    return {**runs, "worker": runs["plain"]}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["worker", "lora"])  # 2 ranks: tests/test_finetune_distributed.py
def test_ema_sigkill_then_resume_matches_uninterrupted_run(variant, toy_data, baselines, tmp_path):
    run = tmp_path / "run"
    kill_after_first_checkpoint(variant, toy_data, run)
    res = ema_resume_run(variant, toy_data, run)
    assert res.resumed_from in (4, 8)
    assert_same_run(run, baselines[variant],
                    "adapters/lora_arm/adapter_model.safetensors" if variant == "lora" else "model.safetensors")
