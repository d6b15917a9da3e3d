"""Warmup + cosine schedule, config validation and keep-last-K atomic checkpoints (no model needed)."""

import math

import pytest

from finetune.checkpoint import checkpoint_dirs, latest_checkpoint, save_checkpoint
from finetune.config import TrainConfig
from finetune.trainer import lr_lambda


def test_warmup_then_cosine_to_floor():
    cfg = TrainConfig(steps=110, warmup_steps=10, min_lr_ratio=0.1)
    f = lr_lambda(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_bad_config_values():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")


def test_keep_last_and_ignore_partial(tmp_path):
    def write(path):
        path.mkdir(parents=True)
        (path / "config.json").write_text("{}")

    for step in (5, 10, 15):
        save_checkpoint(tmp_path, step, write, {"x": step}, {"step": step}, keep_last=2)
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [10, 15]
    (tmp_path / "checkpoints" / ".tmp-step_000020-1").mkdir()  # a crashed write is never picked up
    (tmp_path / "checkpoints" / "step_000025").mkdir()  # nor a directory without training_state
    assert latest_checkpoint(tmp_path).name == "step_000015"

    def broken(path):
        write(path)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path, 30, broken, {}, {"step": 30}, keep_last=2)
    assert latest_checkpoint(tmp_path).name == "step_000015"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp-step_000030")]
