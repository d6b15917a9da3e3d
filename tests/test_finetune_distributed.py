"""``accelerate launch --num_processes 2`` (CPU, gloo) gives the per-step loss of one process with the
same global batch (2 processes x batch 2 == 1 process x batch 2 x 2 accumulation steps)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.testing import write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


def _args(data, out, accum):
    return ["-m", "vla.cli", "finetune", "--preset", "tiny", "--data", str(data), "--out", str(out), "--steps", "3",
            "--batch-size", "2", "--grad-accum", str(accum), "--warmup", "1", "--threads", "1"]


def _losses(out):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_match_one_process_same_global_batch(tmp_path):
    data = write_toy_dataset(tmp_path / "data", episodes=4, steps=16)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    one = subprocess.run([sys.executable, *_args(data, tmp_path / "one", 2)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    # `accelerate` the console script imports timm (broken without torchvision here): use the launch module
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          *_args(data, tmp_path / "two", 1)], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    meta = json.loads((tmp_path / "two" / "checkpoints" / "step_000003" / "training_state" / "meta.json").read_text())
    assert meta["world_size"] == 2
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4), (x, y)
