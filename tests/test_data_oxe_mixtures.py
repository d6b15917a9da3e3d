"""Named OXE mixtures: published weights, members found by TFDS name under a data dir, missing members reported
together (or skipped with --allow-missing), sampling frequencies that follow the weights, and `vla finetune
--data-mix` training a tiny mixture of three registered datasets with different action spaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_pipelines import oxe
from data_pipelines.oxe.mixtures import dataset_configs, mixture
from data_pipelines.pipeline import Pipeline, PipelineConfig
from data_pipelines.rlds import features as F
from data_pipelines.rlds.writer import write_tfds

ROOT = Path(__file__).resolve().parents[1]
SOUP = "openvla/oxe_magic_soup"
# three members of OpenVLA's magic soup with different action spaces: name -> (episodes, steps, action_dim, weight)
PRESENT = {"jaco_play": (2, 4, 4, 1.0), "language_table": (2, 10, 2, 0.1),
           "austin_buds_dataset_converted_externally_to_rlds": (2, 3, 7, 1.0)}


def _write(name: str, out: Path, episodes: int, steps: int) -> None:
    feats = oxe.get_entry(name).features
    eps = []
    for e in range(episodes):
        ep = F.random_episode(feats, np.random.default_rng(e), steps)
        obs = ep["steps"]["observation"]
        for k, v in feats["steps"]["feature"]["observation"].items():
            if F.is_leaf(v) and v["kind"] == "image":
                obs[k] = np.full_like(obs[k], 30 + 20 * e)
        if name == "language_table":
            codes = np.zeros((steps, 512), np.int32)
            codes[:, :4] = np.frombuffer(b"push", np.uint8)
            obs["instruction"] = codes
        eps.append(ep)
    write_tfds({"train": eps}, feats, out, name, version="0.1.0")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("oxe")
    for name, (eps, steps, _, _) in PRESENT.items():
        _write(name, d, eps, steps)
    return d


def test_published_weights_first_listing_wins_and_bare_names():
    full, soup = mixture("oxe_magic_soup_plus")  # bare: only OpenVLA defines it
    assert full == "openvla/oxe_magic_soup_plus" and dict(soup)["droid"] == 0.06 and dict(soup)["bc_z"] == 0.2
    full, ovla = mixture(SOUP)
    w = dict(ovla)
    assert len(ovla) == 23 and w["fractal20220817_data"] == 0.54087122203 and w["language_table"] == 0.1
    assert w["bridge_orig"] == 1.0 and "nyu_door_opening_surprising_effectiveness" not in w and "bc_z" not in w
    octo = dict(mixture("octo/oxe_magic_soup")[1])
    assert len(octo) == 25 and octo["nyu_door_opening_surprising_effectiveness"] == 1.0 and octo["bc_z"] == 0.2
    franka = dict(mixture("openvla/rtx_franka")[1])  # taco_play listed with 2.0 (rtx) then 1.0 (franka part)
    assert franka["taco_play"] == 2.0 and franka["austin_buds_dataset_converted_externally_to_rlds"] == 3.0
    with pytest.raises(ValueError, match="ambiguous: octo/oxe_magic_soup or openvla/oxe_magic_soup|"
                                         "ambiguous: openvla/oxe_magic_soup or octo/oxe_magic_soup"):
        mixture("oxe_magic_soup")
    with pytest.raises(ValueError, match="unknown.*openvla/rtx"):
        mixture("magic")


def test_missing_members_one_error_or_skipped_with_list(data_dir):
    with pytest.raises(FileNotFoundError) as ei:
        dataset_configs(SOUP, str(data_dir))
    msg = str(ei.value)
    assert "20 of 23 member datasets not found" in msg and "fractal20220817_data" in msg and "cmu_stretch" in msg
    assert "jaco_play," not in msg and "--allow-missing" in msg
    printed: list[str] = []
    full, dcs = dataset_configs(SOUP, str(data_dir), allow_missing=True, report=printed.append)
    assert len(printed) == 1 and "skipping 20 missing" in printed[0] and "bridge_dataset" in printed[0]
    assert {d.name: d.weight for d in dcs} == {n: v[3] for n, v in PRESENT.items()}
    assert {d.name: d.cameras for d in dcs}["jaco_play"] == ("primary", "wrist")


def test_sampling_frequencies_follow_weight_times_size(data_dir):
    _, dcs = dataset_configs(SOUP, str(data_dir), allow_missing=True, report=lambda s: None)
    pipe = Pipeline(PipelineConfig(datasets=dcs, horizon=2, image_size=(16, 16), augment=None, balance_weights=True,
                                   seed=3, cache_mb=256), progress=False)  # decoded episodes stay in RAM
    pipe.images_for = lambda i: False
    n = 4000
    counts: dict[str, int] = {}
    for _, s in zip(range(n), pipe):
        counts[s["embodiment"]] = counts.get(s["embodiment"], 0) + 1
    mass = {oxe.get_entry(k).spec.name: v[0] * v[1] * v[3] for k, v in PRESENT.items()}  # episodes*steps*weight
    total = sum(mass.values())
    for emb, m in mass.items():  # p = 8/16, 2/16, 6/16; tolerance: 4.5 binomial standard deviations
        p = m / total
        assert abs(counts[emb] / n - p) <= 4.5 * np.sqrt(p * (1 - p) / n), (emb, counts, p)


def test_remote_data_entries_parse_with_and_without_weight():
    from finetune.commands.finetune import parse_data

    a, b = parse_data(["gs://bucket/oxe/kuka/0.1.0:2.5", "ram://x/bc_z"])
    assert (a.path, a.weight, b.path, b.weight) == ("gs://bucket/oxe/kuka/0.1.0", 2.5, "ram://x/bc_z", 1.0)


@pytest.mark.slow
def test_vla_finetune_data_mix_trains_three_action_spaces(data_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), VLA_CACHE_DIR=str(tmp_path / "cache"))
    base = [sys.executable, "-m", "vla.cli", "finetune", "--data-mix", SOUP, "--data-dir", str(data_dir),
            "--preset", "tiny", "--batch-size", "4", "--warmup", "1", "--threads", "1", "--save-every", "100"]
    refused = subprocess.run([*base, "--out", str(tmp_path / "no"), "--steps", "2"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "vla finetune: error: --data-mix openvla/oxe_magic_soup: 20 of 23 member" in refused.stderr
    run = subprocess.run([*base, "--allow-missing", "--out", str(tmp_path / "run"), "--steps", "3"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "skipping 20 missing member datasets" in run.stdout and "trained 3 steps" in run.stdout
    policy = Path(run.stdout.split("policy: ")[1].split()[0])
    dims = {json.loads(f.read_text())["name"]: json.loads(f.read_text())["action_dim"]
            for f in (policy / "embodiments").glob("*.json")}
    assert dims == {"jaco2": 4, "xarm_language_table": 2, "franka_buds": 7}
