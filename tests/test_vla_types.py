import json
import re

import numpy as np
import pytest

from tests.vla_helpers import panda_spec
from vla.normalization import NormStats
from vla.types import EmbodimentSpec, InvalidObservationError, validate_observation


def test_normstats_match_numpy_and_invert():
    rng = np.random.default_rng(1)
    data = rng.normal(3.0, 2.0, (1000, 4))
    stats = NormStats.from_data(data, mode=["quantile", "zscore", "quantile", "zscore"], skip_dims=[2])
    assert np.allclose(stats.q01, np.quantile(data, 0.01, axis=0))
    assert np.allclose(stats.std, data.std(0))
    norm = stats.normalize(data)
    q_dim = norm[:, 0]
    assert np.mean((q_dim >= -1) & (q_dim <= 1)) == pytest.approx(0.98, abs=0.01)
    assert abs(norm[:, 1].mean()) < 1e-5 and abs(norm[:, 1].std() - 1) < 1e-4
    assert np.array_equal(norm[:, 2], data[:, 2].astype(np.float32))  # skipped dim untouched
    assert np.allclose(stats.unnormalize(norm), data, atol=1e-4)
    with pytest.raises(ValueError, match="last dim 4"):
        stats.normalize(np.zeros((3, 5)))


def test_spec_json_roundtrip(tmp_path):
    spec = panda_spec()
    spec.save(tmp_path / "s.json")
    back = EmbodimentSpec.load(tmp_path / "s.json")
    assert back == spec
    d = json.loads((tmp_path / "s.json").read_text())
    d["bogus"] = 1
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="bad.json.*bogus"):
        EmbodimentSpec.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="action_stats has 3 dims, expected 7"):
        EmbodimentSpec(name="x", cameras=("a",), state_dim=0, action_dim=7, action_stats=NormStats.identity(3))


@pytest.mark.parametrize(
    "mutate, field, expected",
    [
        (lambda o: o["images"].clear(), "images", "at least one of cameras"),
        (lambda o: o["images"].update(top=np.zeros((8, 8, 3), np.uint8)), "images", "cameras among"),
        (lambda o: o["images"].update(wrist=np.zeros((84, 84, 3), np.float32)), "images.wrist", "dtype uint8"),
        (lambda o: o["images"].update(wrist=np.zeros((84, 84), np.uint8)), "images.wrist", r"shape \[H>=8, W>=8, 3\]"),
        (lambda o: o.update(state=np.zeros(5, np.float32)), "state", r"shape \[9\]"),
        (lambda o: o.update(state=np.zeros(9, np.int64)), "state", "float array"),
        (lambda o: o.update(prompt=""), "prompt", "non-empty instruction"),
    ],
)
def test_validation_names_field_expected_got(mutate, field, expected):
    obs = {"images": {"agentview": np.zeros((84, 84, 3), np.uint8), "wrist": np.zeros((84, 84, 3), np.uint8)},
           "state": np.zeros(9, np.float32), "prompt": "go"}
    validate_observation(obs, panda_spec())
    mutate(obs)
    with pytest.raises(InvalidObservationError) as e:
        validate_observation(obs, panda_spec(), index=3)
    assert e.value.field == f"observations[3].{field}"
    assert "expected" in str(e.value) and "got" in str(e.value)
    assert re.search(expected, str(e.value))


def test_per_observation_seeds_fans_out_one_seed_and_checks_lists():
    from vla.types import per_observation_seeds

    assert per_observation_seeds(None, 3) == [None, None, None]
    assert per_observation_seeds(np.int64(5), 2) == [5, 5] and per_observation_seeds(7, 1) == [7]
    assert per_observation_seeds((1, 2), 2) == [1, 2]
    with pytest.raises(ValueError, match="got 3 seeds for 2 observations"):
        per_observation_seeds([1, 2, 3], 2)
