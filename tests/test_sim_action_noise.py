"""``vla collect --action-noise``: DART noise injection (the robot executes action + drift, the demo records the
expert's own action), reproducible from the episode seed, gripper untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim_eval.noise import ActionNoise

ROOT = Path(__file__).resolve().parents[1]


def test_noise_is_a_seeded_ar1_drift_on_the_arm_dims_only():
    """Oracle: an AR(1) process with coefficient rho and stationary std s has std s and lag-1 autocorrelation rho."""
    scale, rho, n = 0.2, 0.8, 20000
    perturb = ActionNoise(scale, rho).stream(seed=7, action_dim=7, gripper_dims=(6,), low=-10, high=10)
    zero = np.zeros(7, np.float32)
    drift = np.stack([perturb(zero) for _ in range(n)])
    assert np.all(drift[:, 6] == 0)  # the gripper command is never perturbed
    arm = drift[:, :6]
    assert np.allclose(arm.std(0), scale, rtol=0.08), arm.std(0)
    lag1 = [np.corrcoef(arm[:-1, i], arm[1:, i])[0, 1] for i in range(6)]
    assert np.allclose(lag1, rho, atol=0.03), lag1
    again = ActionNoise(scale, rho).stream(seed=7, action_dim=7, gripper_dims=(6,), low=-10, high=10)
    assert np.array_equal(np.stack([again(zero) for _ in range(50)]), drift[:50])
    other = ActionNoise(scale, rho).stream(seed=8, action_dim=7, gripper_dims=(6,), low=-10, high=10)
    assert not np.allclose(np.stack([other(zero) for _ in range(50)]), drift[:50])
    clipped = ActionNoise(1.0, 0.0).stream(seed=0, action_dim=7, gripper_dims=(6,))
    big = np.stack([clipped(np.full(7, 0.9, np.float32)) for _ in range(200)])
    assert big[:, :6].max() <= 1.0 and big[:, :6].min() >= -1.0 and big[:, :6].max() == 1.0


@pytest.mark.parametrize("scale, msg", [(-0.1, "--action-noise -0.1: the std must be in [0, 1]"),
                                        (1.5, "--action-noise 1.5: the std must be in [0, 1]")])
def test_bad_noise_is_refused(scale, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[")):
        ActionNoise(scale)


def _run(args, timeout=300):
    """TensorFlow (writer, reader) must not share a process with MuJoCo's renderer: run apart, in the repo root."""
    env = dict(os.environ, MUJOCO_GL="egl", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


READ = """
import json, sys, numpy as np, tensorflow_datasets as tfds
ep = next(iter(tfds.builder_from_directory(sys.argv[1]).as_dataset(split="train")))
steps = list(ep["steps"].as_numpy_iterator())
np.savez(sys.argv[2], state=np.stack([s["observation"]["state"] for s in steps]),
         action=np.stack([s["action"] for s in steps]), noise=float(ep["episode_metadata"]["action_noise"]),
         seed=int(ep["episode_metadata"]["seed"]))
"""


def test_collected_demo_records_the_expert_action_and_the_robot_executed_it_plus_the_drift(tmp_path):
    """Oracle: MuJoCo replay. Stepping a fresh env from the episode seed with (recorded action + the seed's drift)
    reproduces every recorded state; stepping with the recorded actions alone does not."""
    from sim_eval.envs import make_env

    done = _run(["-m", "vla.cli", "collect", "--task", "Lift", "--episodes", "1", "--workers", "1", "--image-size",
                 "32", "--out", str(tmp_path), "--action-noise", "0.2"])
    assert done.returncode == 0, done.stderr
    assert "with action noise 0.2" in done.stdout
    path = tmp_path / "lift_expert" / "1.0.0"
    assert json.loads((path / "collect_summary.json").read_text())["action_noise"] == 0.2
    read = _run(["-c", READ, str(path), str(tmp_path / "ep.npz")])
    assert read.returncode == 0, read.stderr
    ep = np.load(tmp_path / "ep.npz")
    assert float(ep["noise"]) == pytest.approx(0.2)

    def replay(with_noise: bool) -> np.ndarray:
        env = make_env("Lift", image_size=32)
        env.reset(int(ep["seed"]), render=False)
        perturb = ActionNoise(0.2).stream(int(ep["seed"]), env.spec.action_dim, env.spec.gripper_dims)
        states = []
        for a in ep["action"]:
            states.append(env.state())
            env.step(perturb(a) if with_noise else a)
        return np.stack(states)

    noisy, clean = replay(True), replay(False)
    assert np.allclose(noisy, ep["state"], atol=1e-4), np.abs(noisy - ep["state"]).max()
    eef_gap = np.linalg.norm(clean[:, :3] - ep["state"][:, :3], axis=1).max()
    assert eef_gap > 0.01, eef_gap  # the drift moved the arm by more than a centimetre somewhere
