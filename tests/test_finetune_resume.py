"""Exact resume with EMA: a run killed with SIGKILL mid-way continues from its last checkpoint and its loss
and lr trajectory equal the uninterrupted run's (tiny model, CPU, fixed seeds) - from the CLI, with a
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
import torch

from tests.finetune_helpers import RESUME_VARIANTS, ema_resume_run, write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("data"), episodes=4, steps=20)


def _cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vla.cli", "finetune", "--base", "embedded", "--preset", "tiny", "--data", str(data),
            "--out", str(out), "--steps", "8", "--batch-size", "4", "--save-every", "3", "--keep-last", "2",
            "--warmup", "2", "--threads", "1", "--seed", "0", "--ema", "0.9", "--lr", "1e-3"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_cli_ema_sigkill_then_resume_matches_uninterrupted_run(toy_data, tmp_path):
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


@pytest.fixture(scope="module")
def baselines(toy_data, tmp_path_factory):
    """Uninterrupted runs, one per distinct trajectory (a data-loader worker reads the in-process stream)."""
    root = tmp_path_factory.mktemp("baselines")
    runs = {v: root / v for v in ("plain", "lora", "2ranks")}
    for v, out in runs.items():
        ema_resume_run(v, toy_data, out)
    return {**runs, "worker": runs["plain"]}


def _kill_after_first_checkpoint(variant: str, data: Path, out: Path) -> None:
    """Run ``variant`` in a subprocess group and SIGKILL all of it once the step-4 checkpoint exists."""
    code = "import sys; from tests.finetune_helpers import ema_resume_run; ema_resume_run(*sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, variant, str(data), str(out)], env=_env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    try:
        while not (out / "checkpoints" / "step_000004").exists():
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"no checkpoint before exit/timeout: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (out / "policy").exists(), "training finished before it could be killed"


@pytest.mark.slow
@pytest.mark.parametrize("variant", RESUME_VARIANTS)
def test_ema_sigkill_then_resume_matches_uninterrupted_run(variant, toy_data, baselines, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    _kill_after_first_checkpoint(variant, toy_data, run)
    res = ema_resume_run(variant, toy_data, run)
    assert res.resumed_from in (4, 8)
    after, reference = _losses(run), _losses(baselines[variant])
    assert [r["step"] for r in after] == [r["step"] for r in reference] == list(range(1, 13))
    for a, b in zip(after, reference):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6, abs=1e-7), (a, b)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    weights = "adapters/lora_arm/adapter_model.safetensors" if variant == "lora" else "model.safetensors"
    exported = load_file(str(run / "policy" / weights))
    expected = load_file(str(baselines[variant] / "policy" / weights))
    live = load_file(str(run / "checkpoints" / "step_000012" / weights))
    assert exported.keys() == expected.keys() == live.keys()
    for k in exported:  # the export carries the same EMA weights as the uninterrupted run's ...
        assert torch.allclose(exported[k], expected[k], rtol=1e-5, atol=1e-6), k
    # ... which are not the live weights the checkpoint keeps for resume
    assert any(not torch.allclose(exported[k], live[k]) for k in exported if exported[k].is_floating_point())
