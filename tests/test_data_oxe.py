"""Every registered OXE schema, generated from its published feature spec as a real TFDS directory,
reads and standardizes; the real BridgeData V2 sample does too; unregistered data reads through a
mapping file alone; bad names and keys fail with clear messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_pipelines import oxe
from data_pipelines.errors import DataError, MissingKeyError, UnknownDatasetError
from data_pipelines.rlds import features as F
from data_pipelines.rlds.reader import RLDSSource
from data_pipelines.rlds.writer import write_tfds
from data_pipelines.sources import open_dataset
from data_pipelines.standardize import convert_gripper, lookup

REPO = Path(__file__).resolve().parents[1]
BRIDGE_COPY = REPO / "tests" / "data" / "bridge_dataset" / "1.0.0"
BRIDGE_SHARED = REPO.parent / "shared" / "data" / "bridge_dataset" / "1.0.0"
INSTRUCTION = "put the red block in the bowl"


def _fixture_episode(entry, T=2, seed=0):
    rng = np.random.default_rng(seed)
    ep = F.random_episode(entry.features, rng, T)
    if entry.name == "language_table":
        codes = np.zeros(512, np.int32)
        codes[: len(INSTRUCTION)] = np.frombuffer(INSTRUCTION.encode(), np.uint8)
        ep["steps"]["observation"]["instruction"] = np.stack([codes] * T)
    elif entry.mapping.instruction and entry.mapping.instruction_encoding == "text":
        node = ep
        path = entry.mapping.instruction.split("/")
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = [INSTRUCTION] * T
    return ep


def test_registry_has_at_least_ten_real_oxe_names():
    names = set(oxe.known_datasets())
    required = {"fractal20220817_data", "bridge", "taco_play", "jaco_play", "berkeley_cable_routing", "roboturk",
                "viola", "berkeley_autolab_ur5", "toto", "kuka", "language_table",
                "stanford_hydra_dataset_converted_externally_to_rlds"}
    assert required <= names


# the first 13 registered schemas; tests/test_data_oxe_registry.py checks every registered dataset slot by slot
ORIGINAL = ("fractal20220817_data", "bridge", "bridge_dataset", "taco_play", "jaco_play", "berkeley_cable_routing",
            "roboturk", "viola", "berkeley_autolab_ur5", "toto", "kuka", "language_table",
            "stanford_hydra_dataset_converted_externally_to_rlds")


@pytest.mark.parametrize("name", ORIGINAL)
def test_published_schema_reads_and_standardizes(name, tmp_path):
    entry = oxe.get_entry(name)
    raw_ep = _fixture_episode(entry, T=2)
    root = write_tfds({"train": [raw_ep]}, entry.features, tmp_path, name)
    # the directory carries exactly the published feature tree
    raw = RLDSSource(root)
    assert raw.name == name
    expected_keys = set()

    def walk(node, prefix):
        if isinstance(node, dict) and node.get("kind") == "steps":
            walk(node["feature"], prefix)
        elif F.is_leaf(node):
            expected_keys.add(prefix)
        else:
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else k)

    walk(entry.features, "")
    assert set(raw.feature_keys()) == expected_keys
    got_raw = next(raw.iter_episodes())

    src = open_dataset(root)
    assert src.spec == entry.spec
    ep = next(src.iter_episodes())
    spec = entry.spec
    assert ep["embodiment"] == spec.name
    assert set(ep["images"]) == set(spec.cameras) and set(spec.cameras) <= {"primary", "secondary", "tertiary", "wrist",
                                                                          "wrist_225"}
    for cam, img in ep["images"].items():
        leaf_path = entry.mapping.cameras[cam].split("/")[1:]
        leaf = entry.features["steps"]["feature"]
        for part in leaf_path:
            leaf = leaf[part]
        assert img.dtype == np.uint8 and img.shape == (2, *leaf["shape"])
        np.testing.assert_array_equal(img, lookup(got_raw, entry.mapping.cameras[cam]))
    assert ep["state"].shape == (2, spec.state_dim) and ep["state"].dtype == np.float32
    assert ep["actions"].shape == (2, spec.action_dim) and ep["actions"].dtype == np.float32
    assert ep["prompt"] == INSTRUCTION
    # non-gripper action dims are the raw values, concatenated in mapping order
    raw_parts = [np.asarray(lookup(got_raw, k), np.float32).reshape(2, -1) for k in entry.mapping.action]
    raw_action = np.concatenate(raw_parts, axis=1)
    other = [d for d in range(spec.action_dim) if d not in spec.gripper_dims]
    np.testing.assert_allclose(ep["actions"][:, other], raw_action[:, other])
    for d in spec.gripper_dims:  # uniform gripper convention: [0, 1], 1 = open
        assert np.all((ep["actions"][:, d] >= 0) & (ep["actions"][:, d] <= 1))
        np.testing.assert_allclose(ep["actions"][:, d], convert_gripper(raw_action[:, d],
                                                                        entry.mapping.gripper_convention))


def test_gripper_conventions():
    np.testing.assert_array_equal(convert_gripper([-1, 1, 0], "open_pm1"), [0, 1, 0.5])
    np.testing.assert_array_equal(convert_gripper([-1, 1], "close_pm1"), [1, 0])
    np.testing.assert_array_equal(convert_gripper([0, 1], "close_1"), [1, 0])
    np.testing.assert_array_equal(convert_gripper([0, 0, 1, 0, 0, -1, 0], "relative_close_pm1"), [1, 1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(convert_gripper([True, False], "open_bool"), [1, 0])


@pytest.mark.parametrize("bridge_dir", [BRIDGE_COPY, BRIDGE_SHARED], ids=["repo_copy", "shared_sample"])
def test_real_bridge_sample_reads_and_standardizes(bridge_dir):
    if not bridge_dir.exists():
        pytest.skip(f"{bridge_dir} not present")  # the repo copy always is
    src = open_dataset(bridge_dir, split="train")
    n = len(src)
    assert n == (4 if bridge_dir == BRIDGE_COPY else 25)
    assert src.spec.name == "widowx_bridge" and src.spec.action_dim == 7 and src.spec.state_dim == 7
    count = 0
    for ep in src.iter_episodes():
        count += 1
        T = ep["actions"].shape[0]
        assert T > 1 and ep["state"].shape == (T, 7)
        assert "primary" in ep["images"] and ep["images"]["primary"].shape == (T, 64, 64, 3)
        assert ep["images"]["primary"].std() > 5  # real pixels, not a placeholder
        assert ep["prompt"] and isinstance(ep["prompt"], str)
        assert np.all((ep["actions"][:, 6] >= 0) & (ep["actions"][:, 6] <= 1))
        assert np.isfinite(ep["actions"]).all()
    assert count == n
    assert len(open_dataset(bridge_dir, split="val")) == (2 if bridge_dir == BRIDGE_COPY else 25)


def test_unregistered_dataset_reads_through_mapping_file_alone(tmp_path):
    feats = {"episode_metadata": {"task": F.text()},
             "steps": F.steps({"obs": {"front_cam": F.image(24, 32), "hand_cam": F.image(24, 32),
                                       "joints": F.tensor((6,)), "grip_width": F.scalar("float32")},
                               "act": {"dpos": F.tensor((3,)), "drot": F.tensor((3,)), "grip": F.scalar("float32")},
                               "is_first": F.scalar("bool"), "is_last": F.scalar("bool")})}
    ep = F.random_episode(feats, np.random.default_rng(1), 3)
    ep["episode_metadata"]["task"] = "wipe the table"
    ep["steps"]["act"]["grip"] = np.array([1.0, -1.0, 1.0], np.float32)
    root = write_tfds({"train": [ep]}, feats, tmp_path, "my_lab_robot")
    with pytest.raises(UnknownDatasetError, match="not registered.*fractal20220817_data") as err:
        open_dataset(root)
    assert str(err.value).count(str(root)) == 1 and "--mapping" in str(err.value)  # the path once, the flag named
    mapping = {"name": "my_arm", "cameras": {"primary": "steps/obs/front_cam", "wrist": "steps/obs/hand_cam"},
               "state": ["steps/obs/joints", "steps/obs/grip_width"],
               "action": ["steps/act/dpos", "steps/act/drot", "steps/act/grip"],
               "gripper": {"dims": [6], "convention": "close_pm1"}, "instruction": "episode_metadata/task",
               "control_hz": 15}
    yaml_file = tmp_path / "my_arm.yaml"
    import yaml

    yaml_file.write_text(yaml.safe_dump(mapping))
    (tmp_path / "my_arm.json").write_text(json.dumps(mapping))
    for f in (yaml_file, tmp_path / "my_arm.json"):
        src = open_dataset(root, mapping=f)
        out = next(src.iter_episodes())
        assert src.spec.name == "my_arm" and src.spec.state_dim == 7 and src.spec.action_dim == 7
        assert src.spec.control_hz == 15 and src.spec.gripper_dims == (6,)
        assert out["prompt"] == "wipe the table"
        np.testing.assert_array_equal(out["actions"][:, 6], [0.0, 1.0, 0.0])
        np.testing.assert_array_equal(out["actions"][:, :3], ep["steps"]["act"]["dpos"])
        np.testing.assert_array_equal(out["images"]["wrist"], ep["steps"]["obs"]["hand_cam"])
    bad = dict(mapping, state=["steps/obs/joint_positions"])
    with pytest.raises(MissingKeyError) as ei:
        next(open_dataset(root, mapping=bad).iter_episodes())
    msg = str(ei.value)
    assert "steps/obs/joint_positions" in msg and "steps/obs/joints" in msg and "my_lab_robot-train.tfrecord" in msg
    assert "episode train[0]" in msg


def test_unknown_dataset_name_lists_known():
    with pytest.raises(UnknownDatasetError) as ei:
        oxe.get_entry("fractal2022")
    assert "fractal20220817_data" in str(ei.value) and "language_table" in str(ei.value)
    with pytest.raises(UnknownDatasetError):
        open_dataset(BRIDGE_COPY, name="no_such_dataset")


def test_action_dim_contradicting_spec(tmp_path):
    entry = oxe.get_entry("toto")
    feats = json.loads(json.dumps(entry.features))
    feats["steps"]["feature"]["action"]["world_vector"] = F.tensor((2,))  # a corrupted export: 2-D world vector
    root = write_tfds({"train": [F.random_episode(feats, np.random.default_rng(0), 2)]}, feats, tmp_path, "toto")
    with pytest.raises(DataError) as ei:
        next(open_dataset(root).iter_episodes())
    msg = str(ei.value)
    assert "action has 6 dims" in msg and "action_dim=7" in msg and "toto-train.tfrecord-00000-of-00001" in msg
    assert "episode train[0]" in msg
