"""Exact resume: a run killed with SIGKILL mid-way continues from its last checkpoint and its loss
trajectory equals the uninterrupted run's (tiny model, CPU, fixed seeds)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune.testing import write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("data"), episodes=4, steps=20)


def _cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vla.cli", "finetune", "--base", "embedded", "--preset", "tiny", "--data", str(data),
            "--out", str(out), "--steps", "8", "--batch-size", "4", "--save-every", "3", "--keep-last", "2",
            "--warmup", "2", "--threads", "1", "--seed", "0"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(toy_data, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_cmd(toy_data, ref), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
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

    resumed = subprocess.run(_cmd(toy_data, run), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
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
