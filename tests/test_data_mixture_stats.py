"""Two datasets of one embodiment in a mixture share pooled norm stats, weighted as the mixture draws them;
one name used for different specs is an error naming the differing fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from data_pipelines.pipeline import DatasetConfig, Pipeline, PipelineConfig
from data_pipelines.rlds.writer import write_rlds
from vla.types import EmbodimentSpec

PANDA = EmbodimentSpec(name="panda_lab", cameras=("agentview",), state_dim=3, action_dim=4, gripper_dims=(3,),
                       image_size=(8, 8))


def _episodes(n_eps, T, loc, scale, seed):
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(n_eps):
        act = (rng.standard_normal((T, 4)) * scale + loc).astype(np.float32)
        act[:, 3] = rng.choice([-1.0, 1.0], T)
        eps.append({"steps": {"observation": {"agentview": np.zeros((T, 8, 8, 3), np.uint8),
                                              "state": (rng.standard_normal((T, 3)) * scale + loc).astype(np.float32)},
                              "action": act, "language_instruction": "lift"}})
    return eps


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("mix")
    a_eps, b_eps = _episodes(2, 20, 0.0, 1.0, 0), _episodes(1, 20, 5.0, 3.0, 1)  # 40 steps and 20 steps
    a = write_rlds(a_eps, d / "a", "lift_run1", PANDA)
    b = write_rlds(b_eps, d / "b", "lift_run2", PANDA)
    return d, a, b, a_eps, b_eps


def _raw(eps, key):
    return np.concatenate([e["steps"]["action"] if key == "action" else e["steps"]["observation"]["state"]
                           for e in eps]).astype(np.float64)


def test_same_embodiment_pools_stats_weighted_as_the_mixture(two_runs):
    _, a, b, a_eps, b_eps = two_runs
    # equal weights: each of B's 20 steps carries twice the mass of each of A's 40, i.e. the data [A, B, B]
    cfg = PipelineConfig(datasets=(DatasetConfig(str(a), weight=1.0), DatasetConfig(str(b), weight=1.0)),
                         horizon=4, image_size=None)
    pipe = Pipeline(cfg, progress=False)
    spec_a, spec_b = pipe.specs
    assert spec_a == spec_b and list(pipe.embodiments) == ["panda_lab"]
    for key, stats in (("action", spec_a.action_stats), ("state", spec_a.state_stats)):
        x = np.concatenate([_raw(a_eps, key), _raw(b_eps, key), _raw(b_eps, key)])
        np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats.std, x.std(0), rtol=1e-5)
        np.testing.assert_allclose(stats.q01, np.quantile(x, 0.01, axis=0, method="inverted_cdf"), rtol=1e-6)
        np.testing.assert_allclose(stats.q99, np.quantile(x, 0.99, axis=0, method="inverted_cdf"), rtol=1e-6)
    assert spec_a.action_stats.mode == ("quantile",) * 3 + ("none",)  # gripper untouched
    assert spec_a.action_stats.count == 60
    # weights in proportion to the sizes (2:1) weigh every step alike: plain concatenation
    cfg2 = cfg.replace(datasets=(DatasetConfig(str(a), weight=2.0), DatasetConfig(str(b), weight=1.0)))
    stats = Pipeline(cfg2, progress=False).specs[0].action_stats
    x = np.concatenate([_raw(a_eps, "action"), _raw(b_eps, "action")])
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.q99, np.quantile(x, 0.99, axis=0, method="inverted_cdf"), rtol=1e-6)
    # samples from either dataset are normalized with the pooled stats
    sample = next(iter(Pipeline(cfg2.replace(train=False), progress=False)))
    q01, q99 = np.array(stats.q01), np.array(stats.q99)
    expected = ((x - q01) / (q99 - q01) * 2 - 1)[:, :3]  # every raw step of A and B, normalized by hand
    assert np.abs(expected - sample["actions"][0, :3]).max(1).min() < 1e-4


def test_one_name_for_different_specs_names_the_fields(two_runs):
    d, a, _, _, b_eps = two_runs
    other = dataclasses.replace(PANDA, action_space="joint_pos", control_hz=10.0)
    c = write_rlds(b_eps, d / "c", "door_run", other)
    cfg = PipelineConfig(datasets=(DatasetConfig(str(a)), DatasetConfig(str(c))), horizon=4, image_size=None)
    with pytest.raises(ValueError) as err:
        Pipeline(cfg, progress=False)
    msg = str(err.value)
    assert "embodiment name 'panda_lab'" in msg and "action_space" in msg and "control_hz" in msg
    assert "cameras" not in msg and "--mapping" in msg
