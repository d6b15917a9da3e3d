"""``accelerate launch --num_processes 2`` (CPU, gloo) gives the per-step loss of one process with the
same global batch (2 processes x batch 2 == 1 process x batch 2 x 2 accumulation steps)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.finetune_helpers import assert_same_run, ema_resume_run, kill_after_first_checkpoint, write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


def _args(data, out, accum):
    return ["-m", "vla.cli", "finetune", "--preset", "tiny", "--data", str(data), "--out", str(out), "--steps", "3",
            "--batch-size", "2", "--grad-accum", str(accum), "--warmup", "1", "--threads", "1"]


def _losses(out):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_match_one_process_same_global_batch(toy, tmp_path):
    data = toy
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    from vla.cli import main as vla_main

    assert vla_main(_args(data, tmp_path / "one", 2)[2:]) == 0  # one process: in-process, the same code
    # `accelerate` the console script imports timm (broken without torchvision here): use the launch module
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          *_args(data, tmp_path / "two", 1)], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "find_unused_parameters" not in two.stderr  # every trained parameter is used: no needless-search warning
    meta = json.loads((tmp_path / "two" / "checkpoints" / "step_000003" / "training_state" / "meta.json").read_text())
    assert meta["world_size"] == 2
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-4), (x, y)


def _toy_pipeline(data):
    from data_pipelines.pipeline import DatasetConfig, PipelineConfig

    return PipelineConfig(datasets=(DatasetConfig(str(data)),), horizon=8, image_size=(64, 64), seed=0)


def test_rank_slices_partition_the_stream_and_keep_its_order(tmp_path):
    """Two ranks reading the shared stream build images only for their own batches; together they cover it."""
    from data_pipelines.torch_data import VLAIterableDataset, rank_slice

    cfg = _toy_pipeline(write_toy_dataset(tmp_path / "data", episodes=3, steps=10))
    full = [b for _, b in zip(range(6), VLAIterableDataset(cfg).dataloader(4, num_workers=0))]
    for rank in (0, 1):
        ds = VLAIterableDataset(cfg, images_for=rank_slice(rank, 2, 4))
        mine = [b for _, b in zip(range(6), ds.dataloader(4, num_workers=0))]
        for k, (a, b) in enumerate(zip(full, mine)):
            assert [s["state"].tolist() for s in a] == [s["state"].tolist() for s in b]  # same stream
            if k % 2 == rank:
                assert all(np.array_equal(x["images"][c], y["images"][c]) for x, y in zip(a, b) for c in x["images"])
            else:
                assert all(s["_images_skipped"] and not s["images"] for s in b)
    with pytest.raises(ValueError, match="num_workers=0"):
        VLAIterableDataset(cfg, images_for=rank_slice(0, 2, 4)).dataloader(4, num_workers=1)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("data"), episodes=4, steps=16)


@pytest.fixture(scope="module")
def two_ranks(toy, tmp_path_factory):
    """An uninterrupted 2-rank EMA run (spawned ranks), shared by the equivalence and resume tests."""
    out = tmp_path_factory.mktemp("two_ranks")
    return ema_resume_run("2ranks", toy, out), out


@pytest.mark.slow
def test_train_processes_two_ranks_match_one_and_agree_on_time_budget(toy, two_ranks, tmp_path):
    """finetune.launch.train_processes (spawned gloo ranks, no launcher command): 2 ranks x batch 4 give the
    per-step loss of 1 process x batch 4 x 2 accumulation steps; a wall-time budget stops both ranks together."""
    import functools

    from finetune.config import TrainConfig
    from finetune.launch import train_processes
    from tests.finetune_helpers import toy_spec
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    two, _ = two_ranks
    one = ema_resume_run("accum2", toy, tmp_path / "one")
    assert two.step == one.step == 12
    assert two.losses == pytest.approx(one.losses, rel=1e-4)
    # the same updates: the saved (EMA) policies act alike
    assert np.allclose(two.policy.predict([_obs()], seed=0)[0], one.policy.predict([_obs()], seed=0)[0], atol=1e-3)
    data = _toy_pipeline(toy)
    make = functools.partial(VLAPolicy.create, tiny_config(), [toy_spec()], seed=0)
    base = TrainConfig(steps=3, batch_size=2, warmup_steps=1, progress=False, tensorboard=False, seed=0)
    timed = train_processes(make, data, base.replace(steps=100_000, max_seconds=4.0, fit_steps_to_time=True),
                            tmp_path / "timed", processes=2)
    assert 0 < timed.step < 100_000 and timed.seconds < 30  # both ranks stopped at the same step (no hang)
    meta = json.loads(next((tmp_path / "timed" / "checkpoints").glob("step_*/training_state/meta.json")).read_text())
    assert meta["world_size"] == 2 and meta["step"] == timed.step
    with pytest.raises(ValueError, match="picklable"):
        train_processes(lambda: make(), data, base, tmp_path / "bad", processes=2)


@pytest.mark.slow
def test_two_ranks_ema_sigkill_then_resume_matches_uninterrupted_run(toy, two_ranks, tmp_path):
    """Both ranks killed with SIGKILL after a checkpoint; the resumed 2-rank run repeats the uninterrupted one."""
    run = tmp_path / "run"
    kill_after_first_checkpoint("2ranks", toy, run)
    assert ema_resume_run("2ranks", toy, run).resumed_from in (4, 8)
    assert_same_run(run, two_ranks[1])


def _obs():
    rng = np.random.default_rng(0)
    return {"images": {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in ("agentview", "wrist")},
            "state": rng.normal(size=9).astype(np.float32), "prompt": "lift the cube"}
