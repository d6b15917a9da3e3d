"""Bad data fails clearly (file + episode named), or is skipped and counted; the ``vla stats`` CLI."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.errors import DataError
from data_pipelines.rlds.writer import write_rlds
from data_pipelines.sources import open_dataset
from vla.cli import main as vla_main
from vla.types import EmbodimentSpec

SPEC = EmbodimentSpec(name="arm3", cameras=("primary",), state_dim=3, action_dim=4, gripper_dims=(3,))
BRIDGE_COPY = Path(__file__).resolve().parent / "data" / "bridge_dataset" / "1.0.0"


def _eps(n=4, T=5):
    rng = np.random.default_rng(0)
    return [{"steps": {"observation": {"primary": rng.integers(0, 256, (T, 24, 24, 3), dtype=np.uint8),
                                       "state": rng.standard_normal((T, 3)).astype(np.float32)},
                       "action": rng.random((T, 4)).astype(np.float32), "language_instruction": f"go {i}"}}
            for i in range(n)]


@pytest.fixture()
def ds(tmp_path):
    return write_rlds(_eps(), tmp_path, "arm_logs", SPEC, image_encoding="png")


def _shard(root):
    return root / "arm_logs-train.tfrecord-00000-of-00001"


def test_truncated_shard_names_file_and_episode(ds):
    shard = _shard(ds)
    data = shard.read_bytes()
    shard.write_bytes(data[: int(len(data) * 0.6)])
    src = open_dataset(ds)
    with pytest.raises(DataError) as ei:
        for _ in src.iter_episodes():
            pass
    msg = str(ei.value)
    assert str(shard) in msg and "episode train[2]" in msg and "truncated" in msg.lower()


def test_corrupted_record_names_file_and_episode(ds):
    shard = _shard(ds)
    data = bytearray(shard.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 64] = bytes(64)
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError) as ei:
        list(open_dataset(ds).iter_episodes())
    msg = str(ei.value)
    assert str(shard) in msg and "episode train[" in msg and "corrupted" in msg


def test_skip_mode_counts_and_logs(ds, caplog):
    shard = _shard(ds)
    data = shard.read_bytes()
    shard.write_bytes(data[: int(len(data) * 0.6)])
    src = open_dataset(ds, on_error="skip")
    with caplog.at_level(logging.WARNING):
        got = list(src.iter_episodes())
    assert len(got) + src.skipped == 4 and src.skipped >= 1
    assert any("skipping" in r.message and str(shard) in r.message for r in caplog.records)


def test_missing_shard_file(ds):
    _shard(ds).unlink()
    with pytest.raises(DataError, match="shard file listed in dataset_info.json is missing"):
        list(open_dataset(ds).iter_episodes())


def test_missing_directory_lists_contents(tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no TFDS dataset.*something_else"):
        open_dataset(tmp_path)


def test_vla_stats_cli_and_read_only_fallback(tmp_path, capsys, monkeypatch):
    copy = tmp_path / "bridge_dataset" / "1.0.0"
    shutil.copytree(BRIDGE_COPY, copy, ignore=shutil.ignore_patterns("vla_norm_stats-*"))
    os.chmod(copy, 0o555)  # read-only data: the cache goes to $VLA_CACHE_DIR
    cache = tmp_path / "cache"
    monkeypatch.setenv("VLA_CACHE_DIR", str(cache))
    try:
        assert vla_main(["stats", str(copy)]) == 0
        out = capsys.readouterr().out
        assert "widowx_bridge" in out and "computed and cached" in out and "action (7 dims)" in out
        assert "     6     none" in out  # gripper untouched
        assert not list(copy.glob("vla_norm_stats-*")) and len(list((cache / "norm_stats").glob("*.json"))) == 1
        assert vla_main(["stats", str(copy), "--json"]) == 0
        import json

        d = json.loads(capsys.readouterr().out)
        assert d["from_cache"] and d["episodes"] == 4 and len(d["action"]["q99"]) == 7
    finally:
        os.chmod(copy, 0o755)
    assert vla_main(["stats", str(tmp_path / "nope")]) == 1
    assert "no TFDS dataset" in capsys.readouterr().err
    assert vla_main(["stats", str(copy), "--name", "not_a_dataset"]) == 1
    assert "registered:" in capsys.readouterr().err


def test_vla_stats_list(capsys):
    assert vla_main(["stats", "--list"]) == 0
    out = capsys.readouterr().out
    assert "fractal20220817_data" in out and "language_table" in out and "stanford_hydra" in out
    assert vla_main(["stats"]) == 1
    assert "give a dataset" in capsys.readouterr().err
