"""sim_eval envs, experts and rollouts on real MuJoCo (robosuite)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_eval.envs import make_env, robosuite_panda_spec
from sim_eval.experts import make_expert
from sim_eval.rollout import Job, RolloutConfig, run_episode
from vla.types import Policy, PolicyMetadata, validate_observation


@pytest.fixture(scope="module")
def lift():
    env = make_env("Lift", image_size=48)
    yield env
    env.close()


def test_observation_vocabulary_and_upright_images(lift):
    obs = lift.reset(seed=3)
    spec = lift.spec
    validate_observation(obs, spec)
    assert set(obs["images"]) == {"agentview", "wrist"}
    img = obs["images"]["agentview"]
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert obs["state"].shape == (9,) and obs["state"].dtype == np.float32
    assert obs["prompt"] == "pick up the red cube"
    # agentview looks at the robot across the table: robot/wall (dark) at the top, white table below
    assert img[:8].mean() < img[-16:].mean() - 20


def test_seeded_reset_reproducible_and_render_on_request(lift):
    n0 = lift.renders
    a = lift.reset(seed=5, render=False)
    cube_a = lift.raw()["cube_pos"].copy()
    b = lift.reset(seed=5, render=False)
    assert a["images"] == {} and lift.renders == n0
    np.testing.assert_allclose(lift.raw()["cube_pos"], cube_a)
    np.testing.assert_allclose(a["state"], b["state"])
    lift.reset(seed=6, render=False)
    assert not np.allclose(lift.raw()["cube_pos"], cube_a)


def test_bad_action_names_shape(lift):
    lift.reset(seed=0, render=False)
    with pytest.raises(ValueError, match="7 finite floats"):
        lift.step(np.zeros(6))


def test_spec_roundtrips_json():
    from vla.types import EmbodimentSpec

    spec = robosuite_panda_spec(84)
    assert EmbodimentSpec.from_dict(spec.to_dict()) == spec
    assert spec.gripper_dims == (6,) and spec.image_size == (84, 84)


@pytest.mark.parametrize("task,seed", [("Lift", 7), ("Door", 0), ("Stack", 7), ("PickPlaceCan", 0)])
def test_expert_succeeds(task, seed):
    """One seed per task (the collect tests run more Lift seeds; benchmarks/expert_success.py measures rates)."""
    env = make_env(task, image_size=64)
    expert = make_expert(task, env=env)
    assert isinstance(expert, Policy)
    r = run_episode(env, expert, Job(task, seed))
    env.close()
    assert r.success, (r.seed, r.steps)
    assert r.renders == 0  # the expert reads state only: nothing rendered


class _ChunkPolicy:
    """A fixed-horizon stand-in that looks at images and returns zero-motion chunks."""

    def __init__(self, spec, horizon=8):
        self.calls, self.horizon = 0, horizon
        self.metadata = PolicyMetadata({spec.name: spec}, spec.name, horizon)

    def predict(self, observations, *, embodiment=None, seed=None):
        self.calls += 1
        assert set(observations[0]["images"]) == {"agentview", "wrist"}
        return [np.zeros((self.horizon, 7), np.float32)]

    def reset(self):
        pass


def test_chunk_execution_renders_only_at_queries(lift):
    pol = _ChunkPolicy(lift.spec, horizon=10)
    res = run_episode(lift, pol, Job("Lift", 1), RolloutConfig(max_steps=20))  # spec.execute_horizon = 8
    assert res.steps == 20 and res.queries == pol.calls == math.ceil(20 / 8)
    assert res.renders == 2 * res.queries  # two cameras, only when the chunk ran out
    every = run_episode(lift, _ChunkPolicy(lift.spec), Job("Lift", 1),
                        RolloutConfig(max_steps=20, render_every_step=True))
    assert every.renders == 2 * 20 and every.queries == 3


def test_vla_policy_rollout(lift):
    import torch

    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    torch.manual_seed(0)
    policy = VLAPolicy.create(tiny_config(), embodiments=[lift.spec])
    res = run_episode(lift, policy, Job("Lift", 2), RolloutConfig(max_steps=24))
    assert res.steps == 24 and res.queries == 3 and not res.error


def test_metaworld_mt10_env_and_expert():
    from sim_eval.metaworld_env import METAWORLD_TASKS

    assert len(METAWORLD_TASKS) == 10 and len({t.instruction for t in METAWORLD_TASKS.values()}) == 10
    env = make_env("drawer-close-v3", image_size=48, cameras=("agentview",))
    obs = env.reset(seed=1)
    validate_observation(obs, env.spec)
    assert obs["prompt"] == "close the drawer" and obs["state"].shape == (4,)
    expert = make_expert("drawer-close-v3", env=env)
    res = run_episode(env, expert, Job("drawer-close-v3", 1))
    env.close()
    assert res.success, res.steps


def test_gl_guard_softpipe_only_where_tensorflow_is_loaded(monkeypatch):
    """A spawned worker inherits the parent's environment: a softpipe fallback forced because the
    parent had TensorFlow loaded must not slow down a worker without it; a user's own choice stays."""
    import os
    import sys
    import types

    from sim_eval.gl import gl_guard

    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.delenv("VLA_SOFTPIPE_FOR_TENSORFLOW", raising=False)  # this process's own fallback, if any
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv("GALLIUM_DRIVER", "softpipe")
    gl_guard()
    assert os.environ["GALLIUM_DRIVER"] == "softpipe"  # set by the user: kept
    monkeypatch.delenv("GALLIUM_DRIVER")
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    with pytest.warns(UserWarning, match="softpipe"):
        gl_guard()
    assert os.environ["GALLIUM_DRIVER"] == "softpipe"
    monkeypatch.delitem(sys.modules, "tensorflow")  # now as in a spawned child of that process
    gl_guard()
    assert "GALLIUM_DRIVER" not in os.environ


def _quat_yaw(q_xyzw) -> float:
    x, y, z, w = q_xyzw
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _face_offset(a: float) -> float:
    """Distance (rad) from ``a`` to the nearest multiple of a quarter turn (a cube face)."""
    return abs((a + math.pi / 4) % (math.pi / 2) - math.pi / 4)


def test_stack_grasp_yaw_is_cube_a_s_own_unless_cube_b_is_in_reach():
    """The demos' wrist turn: the smallest turn onto a face of cube A when cube B is far; near cube B the other
    face pair may be taken, still with at most a quarter turn (never the 135° swings it once made)."""
    env = make_env("Stack", image_size=48)
    expert = make_expert("Stack", env=env)
    far = near = 0
    for seed in range(40, 100):
        obs = env.reset(seed, render=False)
        raw = env.raw()
        gap = float(np.linalg.norm(raw["cubeB_pos"][:2] - raw["cubeA_pos"][:2]))
        expert.reset()
        expert.predict([obs])
        turn = expert.memo["yaw"]
        hand = _quat_yaw(raw["robot0_eef_quat"])
        assert _face_offset(hand + turn - _quat_yaw(raw["cubeA_quat"])) < 1e-6, seed  # fingers on a face
        if gap > 0.08:
            far += 1
            assert abs(turn) <= math.pi / 4 + 1e-6, (seed, gap, turn)
        elif gap < 0.07:
            near += 1
            assert abs(turn) <= math.pi / 2 + 1e-6, (seed, gap, turn)
    env.close()
    assert far >= 20 and near >= 3, (far, near)
