"""`vla check DATA --checkpoint CKPT` on real RLDS files and .npz observation files.

The checkpoint's embodiment stats are computed here with numpy from the very arrays written (not by the
pipeline), and each mismatch is built by hand: a missing camera, a state-dim mismatch, a flipped gripper
(1 - g), and a state dim shifted by 3 stds.  Each must be named in a FAIL row with exit 1; the matching data
must pass with exit 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vla.cli import main as vla_main
from vla.normalization import NormStats
from vla.types import EmbodimentSpec

SPEC = EmbodimentSpec(name="arm", cameras=("agentview", "wrist"), state_dim=9, action_dim=7, gripper_dims=(6,),
                      image_size=(32, 32))


def episodes(n=3, steps=30, seed=0, state_dim=9, cameras=SPEC.cameras, flip=False, shift=0.0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        state = rng.normal(0, 1, (steps, state_dim)).astype(np.float32)
        state[:, 2] += shift
        actions = rng.normal(0, 0.5, (steps, 7)).astype(np.float32)
        actions[:, 6] = (np.arange(steps) < 0.75 * steps).astype(np.float32)  # open (1) for 75 % of the episode
        if flip:
            actions[:, 6] = 1.0 - actions[:, 6]
        obs = {"state": state, **{c: rng.integers(0, 255, (steps, 32, 32, 3), dtype=np.uint8) for c in cameras}}
        out.append({"steps": {"observation": obs, "action": actions, "language_instruction": "lift"}})
    return out


def write(tmp_path, name, eps, spec=SPEC):
    from data_pipelines.rlds.writer import write_rlds

    return write_rlds(eps, tmp_path / "data", name, dataclasses.replace(spec, name=name))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    eps = episodes(seed=100)  # the checkpoint's own training data: same distribution, other draws
    state = np.concatenate([e["steps"]["observation"]["state"] for e in eps])
    action = np.concatenate([e["steps"]["action"] for e in eps])
    spec = SPEC.with_stats(NormStats.from_data(state), NormStats.from_data(action, skip_dims=(6,)))
    path = tmp_path_factory.mktemp("ckpt") / "ckpt"
    VLAPolicy.create(tiny_config(image_size=(32, 32)), [spec]).save_pretrained(path)
    return path


def run(capsys, *argv):
    rc = vla_main(["check", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def fail_rows(out: str) -> list[str]:
    return [line.split("  ")[0] for line in out.splitlines() if "  FAIL  " in line]


def test_matching_dataset_passes(tmp_path, checkpoint, capsys):
    rc, out, _ = run(capsys, write(tmp_path, "arm", episodes()), "--checkpoint", checkpoint)
    assert rc == 0 and fail_rows(out) == [] and out.strip().endswith("compatible"), out
    assert "gripper dim 6" in out and "state dim 8 stats" in out


def test_missing_camera(tmp_path, checkpoint, capsys):
    spec = dataclasses.replace(SPEC, cameras=("agentview",))
    data = write(tmp_path, "arm", episodes(cameras=("agentview",)), spec)
    rc, out, _ = run(capsys, data, "--checkpoint", checkpoint, "--embodiment", "arm")
    assert rc == 1 and fail_rows(out) == ["cameras"], out
    assert "missing ['wrist']" in out


def test_state_dim_mismatch(tmp_path, checkpoint, capsys):
    spec = dataclasses.replace(SPEC, state_dim=7)
    rc, out, _ = run(capsys, write(tmp_path, "arm", episodes(state_dim=7), spec), "--checkpoint", checkpoint)
    assert rc == 1 and fail_rows(out) == ["state dim"], out


def test_flipped_gripper_convention(tmp_path, checkpoint, capsys):
    rc, out, _ = run(capsys, write(tmp_path, "arm", episodes(flip=True)), "--checkpoint", checkpoint)
    assert rc == 1 and fail_rows(out) == ["gripper dim 6"] and "flipped" in out, out


def test_stats_drift_beyond_threshold(tmp_path, checkpoint, capsys):
    data = write(tmp_path, "arm", episodes(shift=3.0))
    rc, out, _ = run(capsys, data, "--checkpoint", checkpoint)
    assert rc == 1 and fail_rows(out) == ["state dim 2 stats"], out
    rc, out, _ = run(capsys, data, "--checkpoint", checkpoint, "--z-threshold", "5")
    assert rc == 0, out  # the same drift under a looser threshold


def test_observation_file(tmp_path, checkpoint, capsys):
    rng = np.random.default_rng(1)
    good = {"images/agentview": rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
            "images/wrist": rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
            "state": rng.normal(0, 1, (4, 9)).astype(np.float32)}
    np.savez(tmp_path / "good.npz", **good)
    rc, out, _ = run(capsys, tmp_path / "good.npz", "--checkpoint", checkpoint)
    assert rc == 0, out
    np.savez(tmp_path / "bad.npz", **{"images/agentview": good["images/agentview"][:, :, :24],
                                      "state": good["state"][:, :8]})
    rc, out, _ = run(capsys, tmp_path / "bad.npz", "--checkpoint", checkpoint)
    assert rc == 1 and set(fail_rows(out)) == {"cameras", "image agentview", "state dim"}, out


def test_bad_input_is_one_line(tmp_path, checkpoint, capsys):
    rc, _, err = run(capsys, tmp_path / "nope.npz", "--checkpoint", checkpoint)
    assert rc == 1 and err.strip() == f"vla check: error: {tmp_path / 'nope.npz'}: no such observation file"
    rc, _, err = run(capsys, tmp_path / "nope.npz", "--checkpoint", tmp_path / "no_ckpt")
    assert rc == 1 and err.startswith("vla check: error: --checkpoint") and len(err.strip().splitlines()) == 1
