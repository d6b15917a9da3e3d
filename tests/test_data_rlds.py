"""RLDS writer -> TFDS directory -> reader round trip, splits, and the standard TFDS loader."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipelines.errors import DataError
from data_pipelines.rlds.reader import RLDSSource
from data_pipelines.rlds.writer import write_rlds
from vla.types import EmbodimentSpec

SPEC = EmbodimentSpec(name="sim_lift", cameras=("agentview", "wrist"), state_dim=9, action_dim=7, gripper_dims=(6,))


def make_episodes(n=5, seed=0, hw=16):
    rng = np.random.default_rng(seed)
    eps = []
    for e in range(n):
        T = 3 + e
        eps.append({
            "steps": {
                "observation": {
                    "agentview": rng.integers(0, 256, (T, hw, hw, 3), dtype=np.uint8),
                    "wrist": rng.integers(0, 256, (T, hw, hw, 3), dtype=np.uint8),
                    "state": rng.standard_normal((T, 9)).astype(np.float32),
                },
                "action": rng.standard_normal((T, 7)).astype(np.float32),
                "language_instruction": [f"lift the cube {e} step {t}" for t in range(T)],
                "reward": rng.random(T).astype(np.float32),
            },
            "metadata": {"episode_id": f"ep{e}", "file_path": f"/logs/run{e}.npz", "seed": e, "success": e % 2 == 0},
        })
    return eps


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    eps = make_episodes()
    root = write_rlds(eps, tmp_path_factory.mktemp("rlds"), "sim_lift", SPEC, episodes_per_shard=2)  # default: png
    return eps, root


def test_round_trip_identical_every_step(written):
    eps, root = written
    src = RLDSSource(root, split="train")
    assert len(src) == len(eps)
    seen = []
    for ep in src.iter_episodes():
        i = ep["_ref"].index
        seen.append(i)
        want, got = eps[i]["steps"], ep["steps"]
        T = want["action"].shape[0]
        for cam in ("agentview", "wrist"):
            np.testing.assert_array_equal(got["observation"][cam], want["observation"][cam])
        np.testing.assert_array_equal(got["observation"]["state"], want["observation"]["state"])
        np.testing.assert_array_equal(got["action"], want["action"])
        np.testing.assert_array_equal(got["reward"], want["reward"])
        assert got["language_instruction"] == want["language_instruction"]
        np.testing.assert_array_equal(got["is_first"], np.arange(T) == 0)
        np.testing.assert_array_equal(got["is_last"], np.arange(T) == T - 1)
        np.testing.assert_array_equal(got["is_terminal"], np.arange(T) == T - 1)
        np.testing.assert_array_equal(got["discount"], np.ones(T, np.float32))
        meta = ep["episode_metadata"]
        assert meta["episode_id"] == f"ep{i}" and meta["file_path"] == f"/logs/run{i}.npz"
        assert meta["seed"] == i and bool(meta["success"]) == (i % 2 == 0)
    assert seen == list(range(len(eps)))


def test_standard_tfds_loaders_read_it(written):
    import tensorflow_datasets as tfds

    eps, root = written
    b = tfds.builder_from_directory(str(root))
    assert b.info.splits["train"].num_examples == len(eps)
    b2 = tfds.builder("sim_lift", data_dir=str(root.parent.parent))  # OpenVLA/Octo style
    ds = b2.as_dataset(split="train[:1]")
    ep = next(iter(ds))
    steps = list(ep["steps"].as_numpy_iterator())
    assert len(steps) == eps[0]["steps"]["action"].shape[0]
    np.testing.assert_array_equal(steps[1]["action"], eps[0]["steps"]["action"][1])
    assert steps[0]["language_instruction"].decode() == "lift the cube 0 step 0"
    assert (root / "vla_embodiment.json").is_file()


@pytest.mark.parametrize("split,expected", [("train[:60%]", [0, 1, 2]), ("train[60%:]", [3, 4]),
                                            ("train[1:3]", [1, 2])])
def test_percentage_and_slice_splits(written, split, expected):
    _, root = written
    src = RLDSSource(root, split=split)
    refs = [ep["_ref"] for ep in src.iter_episodes()]
    assert [r.split_index for r in refs] == expected and [r.index for r in refs] == list(range(len(expected)))


def test_seeded_order_and_resume(written):
    _, root = written
    src = RLDSSource(root)
    order = src.episode_order(seed=3)
    assert sorted(order) == list(range(5)) and order == src.episode_order(seed=3)
    full = [ep["_ref"].index for ep in src.iter_episodes(seed=3)]
    assert full == order
    assert [ep["_ref"].index for ep in src.iter_episodes(seed=3, skip=2)] == order[2:]


def test_multiple_splits_and_jpeg(tmp_path):
    eps = make_episodes(4, hw=32)
    root = write_rlds({"train": eps[:3], "val": eps[3:]}, tmp_path, "two_split", SPEC, image_encoding="jpeg")
    assert len(RLDSSource(root, "train")) == 3 and len(RLDSSource(root, "val")) == 1
    ep = next(RLDSSource(root, "val").iter_episodes())
    got, want = ep["steps"]["observation"]["wrist"], eps[3]["steps"]["observation"]["wrist"]
    assert got.shape == want.shape and got.dtype == np.uint8  # jpeg: lossy but same layout
    with pytest.raises(DataError, match="bad split"):
        len(RLDSSource(root, "test"))


def test_writer_rejects_bad_episodes(tmp_path):
    eps = make_episodes(2)
    eps[1]["steps"]["action"] = np.zeros((eps[1]["steps"]["action"].shape[0], 6), np.float32)
    with pytest.raises(DataError, match=r"episode 1.*steps/action.*float32\[T,7\].*\[4, 6\]"):
        write_rlds(eps, tmp_path, "bad", SPEC)
    eps = make_episodes(1)
    del eps[0]["steps"]["observation"]["wrist"]
    with pytest.raises(DataError, match=r"camera 'wrist'.*keys found: \['agentview', 'state'\]"):
        write_rlds(eps, tmp_path, "bad2", SPEC)
    with pytest.raises(FileExistsError):
        write_rlds(make_episodes(1), tmp_path, "dup", SPEC)
        write_rlds(make_episodes(1), tmp_path, "dup", SPEC)


def test_writer_data_standardizes_without_altering_values(written):
    """Own data keeps its units: the gripper dim (here random, negative too) is not clipped or remapped."""
    from data_pipelines.sources import open_dataset

    eps, root = written
    src = open_dataset(root)
    assert src.spec == SPEC
    for ep in src.iter_episodes():
        want = eps[ep["_index"]]["steps"]
        np.testing.assert_array_equal(ep["actions"], want["action"])
        np.testing.assert_array_equal(ep["state"], want["observation"]["state"])
        np.testing.assert_array_equal(ep["images"]["wrist"], want["observation"]["wrist"])
        assert ep["prompt"] == want["language_instruction"][0]
    assert (np.concatenate([e["steps"]["action"][:, 6] for e in eps]) < 0).any()
