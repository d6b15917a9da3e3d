"""Each generalization factor changes what it claims; the expert still succeeds under the others."""

from __future__ import annotations

import numpy as np
import pytest

from sim_eval.envs import make_env
from sim_eval.experts import make_expert
from sim_eval.factors import FACTORS, FactorSetting, _scale_of
from sim_eval.rollout import Job, run_episode

SEED = 4


@pytest.fixture(scope="module")
def nominal():
    env = make_env("Lift", image_size=48, cameras=("agentview",))
    obs = env.reset(SEED)
    model = env.sim.model
    info = {"obs": obs, "mass": model.body_mass.copy(), "friction": model.geom_friction.copy(),
            "size": model.geom_size.copy(), "cube": env.raw()["cube_pos"].copy()}
    env.close()
    return info


def _env(name, severity=3, seed=0, task="Lift"):
    return make_env(task, image_size=48, cameras=("agentview",), factors=[FactorSetting(name, severity, seed)])


def _pixdiff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("name", ["camera_pose", "lighting", "table_color", "object_color", "distractors"])
def test_visual_factor_changes_pixels(name, nominal):
    env = _env(name)
    obs = env.reset(SEED)
    again = env.reset(SEED)  # reproducible from (factor, severity, seed, episode seed)
    other = env.reset(SEED + 1)
    env.close()
    d = _pixdiff(obs["images"]["agentview"], nominal["obs"]["images"]["agentview"])
    assert d > 0.5, f"{name}: agentview changed by only {d:.3f}"
    assert np.array_equal(obs["images"]["agentview"], again["images"]["agentview"])
    assert not np.array_equal(obs["images"]["agentview"], other["images"]["agentview"])
    np.testing.assert_allclose(obs["state"], nominal["obs"]["state"], atol=1e-6)  # the robot is untouched


def test_object_size_scales_geoms(nominal):
    env = _env("object_size", 2, seed=1)
    env.reset(SEED)
    model = env.sim.model
    bid = model.body_name2id("cube_main")
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid]
    scale = _scale_of(FactorSetting("object_size", 2, 1))
    assert abs(scale - 1) == pytest.approx(0.24)
    ratio = model.geom_size[geoms, 0] / nominal["size"][geoms, 0]
    env.close()
    np.testing.assert_allclose(ratio, scale, rtol=1e-4)


def test_object_pose_widens_range(nominal):
    env = _env("object_pose", 3)
    center = np.array(env.env.table_offset[:2])
    offs = []
    for seed in range(12):
        env.reset(seed, render=False)
        offs.append(env.raw()["cube_pos"][:2] - center)
    env.close()
    offs = np.abs(np.array(offs))
    assert offs.max() <= 0.03 + 0.04 * 3 + 1e-3  # inside the new range
    assert (offs.max(axis=1) > 0.03).sum() >= 3  # and often outside the nominal +-3 cm


def test_paraphrase_differs_from_canonical():
    env = _env("paraphrase", 2)
    prompts = {env.reset(s, render=False)["prompt"] for s in range(6)}
    env.close()
    assert "pick up the red cube" not in prompts
    assert prompts <= set(env.task.paraphrases)


def test_dynamics_changes_mass_and_friction(nominal):
    env = _env("dynamics", 2)
    env.reset(SEED, render=False)
    model = env.sim.model
    bid = model.body_name2id("cube_main")
    g = [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid]
    mass, fric = model.body_mass[bid], model.geom_friction[g, 0].copy()
    env.reset(SEED + 1, render=False)  # edits are undone and redrawn per episode, never compounded
    mass2 = model.body_mass[bid]
    env.close()
    assert mass / nominal["mass"][bid] in (pytest.approx(2.5), pytest.approx(1 / 2.5))
    assert mass2 / nominal["mass"][bid] in (pytest.approx(2.5), pytest.approx(1 / 2.5))
    assert not np.allclose(fric, nominal["friction"][g, 0])


def test_severity_zero_is_nominal(nominal):
    env = make_env("Lift", image_size=48, cameras=("agentview",), factors=["lighting@0", "camera_pose@0"])
    obs = env.reset(SEED)
    env.close()
    assert np.array_equal(obs["images"]["agentview"], nominal["obs"]["images"]["agentview"])


def test_factor_parse_errors():
    assert FactorSetting.parse("lighting@3").severity == 3
    with pytest.raises(ValueError, match="unknown factor"):
        FactorSetting.parse("weather@1")
    with pytest.raises(ValueError, match="severity"):
        FactorSetting.parse("lighting@7")
    assert len(FACTORS) >= 8


def test_expert_succeeds_under_non_task_factors():
    factors = [FactorSetting(n, 3, 1) for n in ("camera_pose", "lighting", "table_color", "object_color",
                                                "distractors", "paraphrase")] + [FactorSetting("object_pose", 2, 1)]
    env = make_env("Lift", image_size=48, cameras=("agentview",), factors=factors)
    expert = make_expert("Lift", env=env)
    results = [run_episode(env, expert, Job("Lift", s)) for s in (0, 1, 2)]
    env.close()
    assert all(r.success for r in results), [(r.seed, r.steps) for r in results]


@pytest.mark.parametrize("task", ["Stack", "PickPlaceCan", "Door"])
def test_all_factors_apply_on_other_tasks(task):
    env = make_env(task, image_size=48, cameras=("agentview",))
    base = env.reset(SEED)
    env.close()
    env = make_env(task, image_size=48, cameras=("agentview",), factors=[FactorSetting(n, 2, 0) for n in FACTORS])
    obs = env.reset(SEED)
    expert = make_expert(task, env=env)
    res = run_episode(env, expert, Job(task, SEED), )
    env.close()
    assert obs["prompt"] != base["prompt"]
    assert _pixdiff(obs["images"]["agentview"], base["images"]["agentview"]) > 1.0
    assert res.steps > 0 and not res.error  # the perturbed scene runs (success not required: dynamics/size change it)
