"""A registered OXE dataset on a non-local filesystem (TensorFlow's in-memory ``ram://``, standing in for ``gs://``)
streams through the pipeline with no local copy; its norm stats go to the local cache dir, never to the data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from data_pipelines import oxe
from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.rlds import features as F
from data_pipelines.rlds.tf_loader import tensorflow
from data_pipelines.rlds.writer import write_tfds
from data_pipelines.sources import open_dataset
from data_pipelines.stats import NormConfig, get_stats

NAME = "austin_buds_dataset_converted_externally_to_rlds"


def _episodes(n: int, T: int = 3) -> list[dict]:
    eps = []
    for i in range(n):
        ep = F.random_episode(oxe.get_entry(NAME).features, np.random.default_rng(i), T)
        ep["steps"]["language_instruction"] = [f"task {i}"] * T
        ep["steps"]["observation"]["image"] = np.full((T, 128, 128, 3), 40 + i, np.uint8)
        ep["steps"]["observation"]["wrist_image"] = np.full((T, 128, 128, 3), 90 + i, np.uint8)
        eps.append(ep)
    return eps


@pytest.fixture()
def ram_dataset(tmp_path):
    """The dataset written locally, copied to ``ram://`` and the local copy deleted; yields (url root, episodes)."""
    gfile = tensorflow().io.gfile
    eps = _episodes(3)
    local = write_tfds({"train": eps}, oxe.get_entry(NAME).features, tmp_path / "local", NAME, version="0.1.0")
    root = f"ram://oxe_{tmp_path.name}"
    gfile.makedirs(f"{root}/{NAME}/0.1.0")
    for f in local.iterdir():
        gfile.copy(str(f), f"{root}/{NAME}/0.1.0/{f.name}", overwrite=True)
    shutil.rmtree(tmp_path / "local")
    yield root, eps
    gfile.rmtree(root)


def test_streams_from_ram_filesystem_with_stats_in_local_cache(ram_dataset, tmp_path, monkeypatch):
    root, eps = ram_dataset
    monkeypatch.setenv("VLA_CACHE_DIR", str(tmp_path / "cache"))
    for src in (open_dataset(f"{root}/{NAME}"), open_dataset(NAME, data_dir=root)):
        assert str(src.dir) == f"{root}/{NAME}/0.1.0" and len(src) == 3 and src.spec == oxe.get_entry(NAME).spec
        got = list(src.iter_episodes())
        assert [e["prompt"] for e in got] == ["task 0", "task 1", "task 2"]
        for e, raw in zip(got, eps):
            np.testing.assert_array_equal(e["images"]["wrist"], raw["steps"]["observation"]["wrist_image"])
            np.testing.assert_allclose(e["state"], raw["steps"]["observation"]["state"][:, :8])
    first = get_stats(src, NormConfig(), progress=False)
    assert not first.from_cache and first.path.parent == tmp_path / "cache" / "norm_stats" and first.steps == 9
    expect = np.concatenate([e["steps"]["action"] for e in eps])[:, :6]
    np.testing.assert_allclose(first.action.mean[:6], expect.mean(0), rtol=1e-5, atol=1e-6)
    assert get_stats(src, NormConfig(), progress=False).from_cache
    listing = tensorflow().io.gfile.listdir(f"{root}/{NAME}/0.1.0")
    assert not [f for f in listing if "norm_stats" in f]  # nothing written beside remote data
    pipe = Pipeline(PipelineConfig(datasets=(DatasetConfig(f"{root}/{NAME}"),), horizon=2, image_size=(32, 32),
                                   augment=None), progress=False)
    sample = next(iter(pipe))
    assert sample["embodiment"] == "franka_buds" and sample["images"]["primary"].shape[-1] == 3


def test_missing_remote_dataset_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ram://nowhere/bc_z"):
        open_dataset("bc_z", data_dir="ram://nowhere")
