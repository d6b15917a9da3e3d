"""Instruction-grounded tasks (LiftColor, PickPlaceOne) on real MuJoCo: the target follows the instruction,
wordings are reproducible and held out, wrong objects are counted, bad instructions are one-line errors."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim_eval.language import Instruction, draw_target, parse_target, training_instruction
from sim_eval.tasks import LANGUAGE_TASKS, suite_tasks, task_info

ROOT = Path(__file__).resolve().parents[1]
LIFT_COLOR = LANGUAGE_TASKS["LiftColor"]


def test_registry_wordings_are_reproducible_and_held_out():
    assert suite_tasks("language") == ("LiftColor", "PickPlaceOne")
    for info in LANGUAGE_TASKS.values():
        assert info.grounded and info.templates[0] == info.instruction
        assert not set(info.templates) & set(info.paraphrases)  # held-out wordings never train
        assert all("{target}" in t for t in info.templates + info.paraphrases)
    for name in suite_tasks("mt10"):  # MT10: extra training wordings, apart from the held-out paraphrases
        info = task_info(name)
        assert len(set(info.templates)) == 3 and info.templates[0] == info.instruction
        assert not set(info.templates) & set(info.paraphrases), name
    # 3 consecutive seeds name each colour once
    assert sorted(draw_target(LIFT_COLOR, s) for s in range(30, 33)) == ["blue", "green", "red"]
    drawn = [training_instruction(LIFT_COLOR, "green", s) for s in range(40)]
    assert drawn == [training_instruction(LIFT_COLOR, "green", s) for s in range(40)]
    assert set(drawn) == {t.format(target="green") for t in LIFT_COLOR.templates}  # every training wording used


@pytest.mark.parametrize("text,match", [
    ("lift the purple cube", "names no object of the LiftColor scene \\(its objects: red, green, blue\\)"),
    ("  ", "LiftColor needs an instruction naming one of its objects"),
    ("lift the red cube onto the blue one", "names 2 objects"),
])
def test_bad_instruction_is_one_line_error(text, match):
    with pytest.raises(ValueError, match=match):
        parse_target(LIFT_COLOR, text)


def test_mismatched_names_something_else():
    from sim_eval.language import mismatched

    for seed in range(6):
        text, new = mismatched(LIFT_COLOR, "red", seed)
        assert new in ("green", "blue") and text == f"lift the {new} cube"
        text, new = mismatched(task_info("reach-v3"), None, seed)  # MT10: another task's instruction
        assert new is None and text != task_info("reach-v3").instruction
        assert text in {task_info(t).instruction for t in suite_tasks("mt10")}
    assert mismatched(LIFT_COLOR, "red", 3) == mismatched(LIFT_COLOR, "red", 3)


def test_parse_target_whole_words():
    assert parse_target(LIFT_COLOR, "Could you pick the GREEN box up") == "green"
    assert parse_target(LANGUAGE_TASKS["PickPlaceOne"], "bin the cereal") == "cereal"
    with pytest.raises(ValueError, match="unknown task 'LiftColour'"):
        task_info("LiftColour")


@pytest.fixture(scope="module")
def env():
    from sim_eval.envs import make_env

    e = make_env("LiftColor", image_size=48)
    yield e
    e.close()


def _cubes(env) -> dict[str, np.ndarray]:
    return {c: np.asarray(env.raw()[f"cube_{c}_pos"]).copy() for c in LIFT_COLOR.targets}


def test_scene_three_separated_cubes_reproducible(env):
    obs = env.reset(seed=4)
    assert obs["prompt"] == "lift the green cube" and env.target == "green" == draw_target(LIFT_COLOR, 4)
    cubes = _cubes(env)
    for a, b in itertools.combinations(cubes.values(), 2):
        assert np.linalg.norm(a[:2] - b[:2]) >= 0.1 - 1e-6
    for p in cubes.values():  # resting on the table top (z 0.8) with 2.1 cm half size
        assert abs(p[2] - 0.821) < 0.005
    env.reset(seed=4, render=False)
    np.testing.assert_allclose(np.stack(list(_cubes(env).values())), np.stack(list(cubes.values())), atol=1e-6)
    env.reset(seed=5, render=False)
    assert not np.allclose(_cubes(env)["red"], cubes["red"])
    # the rendered colours are the cubes': some pixels are strongly red, green and blue
    img = obs["images"]["agentview"].astype(int)
    for ch in range(3):
        others = [o for o in range(3) if o != ch]
        assert ((img[..., ch] > 120) & (img[..., others[0]] < 80) & (img[..., others[1]] < 90)).sum() >= 3, ch


def _run(env, policy, seed, factors=()):
    from sim_eval.factors import FactorSet
    from sim_eval.rollout import Job, run_episode

    env.factors = FactorSet(factors)
    env.factors.snapshot(env)
    try:
        return run_episode(env, policy, Job("LiftColor", seed))
    finally:
        env.factors = FactorSet(())
        env.factors.snapshot(env)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expert_lifts_the_named_cube(env, seed):
    from sim_eval.experts import make_expert

    r = _run(env, make_expert("LiftColor", env=env), seed)
    target = draw_target(LIFT_COLOR, seed)
    assert r.success and r.language == {"instruction": f"lift the {target} cube", "target": target,
                                        "scene_target": target, "achieved": target}
    lifted = {c for c, p in _cubes(env).items() if p[2] > 0.88}
    assert lifted == {target}  # only the named cube is up (independent check on the simulator state)


def test_fixed_instruction_moves_the_target(env):
    from sim_eval.experts import make_expert

    assert draw_target(LIFT_COLOR, 3) == "red"
    r = _run(env, make_expert("LiftColor", env=env), 3, [Instruction("fixed", "please raise the BLUE cube")])
    assert r.success and r.language["target"] == "blue" and r.language["scene_target"] == "red"
    assert _cubes(env)["blue"][2] > 0.88 and _cubes(env)["red"][2] < 0.83


class _HabitExpert:
    """Lifts the cube the *seed* drew, whatever the instruction says (a policy that ignores language)."""

    def __new__(cls, env):
        from sim_eval.experts import LiftColorExpert

        class Habit(LiftColorExpert):
            def plan(self, raw, eef):
                saved = self.env._target
                self.env._target = self.env.scene_target
                try:
                    return super().plan(raw, eef)
                finally:
                    self.env._target = saved

        return Habit(env.spec).attach(env)


def test_wrong_object_counted_under_mismatched_instruction(env):
    from sim_eval.language_report import language_summary

    r = _run(env, _HabitExpert(env), 6, [Instruction("mismatched")])
    assert r.language["scene_target"] == "red" and r.language["target"] in ("green", "blue")
    assert not r.success and r.language["achieved"] == "red" and r.steps < LIFT_COLOR.max_steps  # ends at the lift
    r.condition = "instruction:mismatched"
    lang = language_summary([r])
    row = lang["per_instruction"][0]
    assert (row["successes"], row["wrong_object"], row["habit"]) == (0, 1, 1)


def test_target_factors_refused_on_grounded_task():
    from sim_eval.envs import make_env

    with pytest.raises(ValueError, match=r"LiftColor: factor\(s\) \['object_color'\] edit one fixed target object"):
        make_env("LiftColor", image_size=32, factors=["object_color@1"])


def test_paraphrase_factor_names_the_target(env):
    from sim_eval.factors import FactorSetting

    seen = set()
    for seed in range(6):
        env.factors.settings = (FactorSetting("paraphrase", 3, 0),)
        env.reset(seed, render=False)
        seen.add(env.instruction)
        assert draw_target(LIFT_COLOR, seed) in env.instruction.split()
        assert not any(env.instruction == t.format(target=env.target) for t in LIFT_COLOR.templates)
    env.factors.settings = ()
    assert len(seen) >= 4


def test_pick_place_one_expert_bins_the_named_object():
    from sim_eval.envs import make_env
    from sim_eval.experts import make_expert
    from sim_eval.rollout import Job, run_episode

    env = make_env("PickPlaceOne", image_size=32)
    try:
        env.reset(7, render=False)
        assert all(env.raw()[f"{o}_pos"][1] < 0 for o in ("Milk", "Bread", "Cereal", "Can"))  # all four, left bin
        r = run_episode(env, make_expert("PickPlaceOne", env=env), Job("PickPlaceOne", 7))
        assert draw_target(LANGUAGE_TASKS["PickPlaceOne"], 7) == "can"
        assert r.success and r.language["achieved"] == "can", r.language
        can, e = np.asarray(env.raw()["Can_pos"]), env.env
        # the can's quadrant of the right bin (high x, high y of the bin centre), computed from the bin geometry
        assert e.bin2_pos[0] < can[0] < e.bin2_pos[0] + e.bin_size[0] / 2
        assert e.bin2_pos[1] < can[1] < e.bin2_pos[1] + e.bin_size[1] / 2
        others = [np.asarray(env.raw()[f"{o}_pos"]) for o in ("Milk", "Bread", "Cereal")]
        assert all(p[1] < 0 for p in others)  # still in the left bin
    finally:
        env.close()


class _Checked:
    """A picklable do-nothing Policy that validates every observation as a served policy does."""

    def __init__(self, size=32):
        from sim_eval.envs import robosuite_panda_spec
        from vla.types import PolicyMetadata

        self.spec = robosuite_panda_spec(size)
        self.metadata = PolicyMetadata({self.spec.name: self.spec}, self.spec.name, 8)

    def predict(self, observations, *, embodiment=None, seed=None):
        from vla.types import validate_observation

        for obs in observations:
            validate_observation(obs, self.spec)  # an empty prompt is refused for this embodiment
        return [np.zeros((8, 7), np.float32)]

    def reset(self):
        pass


@pytest.mark.slow  # ~60 s on 2 busy cores (a spawned sim worker builds LiftColor; 6 short episodes)
def test_ablations_reach_a_policy_that_requires_a_prompt(tmp_path):
    """The empty ablation sends a content-free prompt (a literally empty one is refused by the Policy interface:
    every ablated episode errored before); a still policy achieves nothing, so no wrong object either."""
    from sim_eval.evaluate import evaluate
    from sim_eval.language import EMPTY_PROMPT

    rep = evaluate(_Checked(), ["LiftColor"], (), episodes=2, workers=1, out_dir=tmp_path, image_size=32, max_steps=16,
                   instruction_ablation=["empty", "mismatched"], progress=False, videos_per_condition=1)
    assert rep["errors"] == []
    assert len(rep["videos"]) == 3 and not any(":" in v for v in rep["videos"])  # portable file names
    assert all((tmp_path / v).stat().st_size > 0 for v in rep["videos"])
    prompts = {(e["condition"], e["seed"]): e["language"]["instruction"] for e in rep["episodes"]}
    assert prompts[("instruction:empty", 1000)] == EMPTY_PROMPT
    assert draw_target(LIFT_COLOR, 1001) == "blue" and prompts[("nominal", 1001)] == "lift the blue cube"
    assert prompts[("instruction:mismatched", 1001)] in ("lift the red cube", "lift the green cube")
    lang = rep["language"]
    assert all(r["successes"] == 0 and r["wrong_object"] == 0 for r in lang["per_instruction"])
    assert {a["condition"] for a in lang["ablation"]} == {"instruction:empty", "instruction:mismatched"}


def vla(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL="egl", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "vla.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args,err", [
    (["--task", "LiftColor", "--instruction", ""], "vla eval: error: --instruction: LiftColor needs an instruction"),
    (["--task", "LiftColor", "--instruction", "lift the purple cube"],
     "vla eval: error: --instruction: instruction 'lift the purple cube' names no object of the LiftColor scene"),
    (["--task", "Lift", "--instruction", ""], "vla eval: error: --instruction: empty prompt for task 'Lift'"),
    (["--task", "LiftColour"], "vla eval: error: unknown task 'LiftColour'"),
])
def test_eval_cli_bad_instruction(args, err, tmp_path):
    p = vla("eval", *args, "--out", str(tmp_path), "--episodes", "1")
    assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].startswith(err), p.stderr[-1500:]
    assert "Traceback" not in p.stderr


_READ = """
import json, sys
from data_pipelines.sources import open_dataset
src = open_dataset(sys.argv[1])
print(json.dumps([e["prompt"] for e in src.iter_episodes()]))
"""


@pytest.mark.slow  # ~50-100 s on 2 busy cores: two CLI subprocesses, TensorFlow write + read, 12 eval episodes
def test_collect_draws_training_wordings_and_eval_reports_language(tmp_path):
    """`vla collect --task LiftColor`: each demo says its target in a training wording (never a held-out one);
    `vla eval` with the ablations on the scripted expert (which reads the target, so it follows any instruction):
    the per-colour rows, the mismatched condition achieving the *named* cube, paraphrase retention."""
    import json

    p = vla("collect", "--task", "LiftColor", "--episodes", "4", "--out", str(tmp_path), "--workers", "1",
            "--image-size", "32")
    assert p.returncode == 0, p.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-c", _READ, str(tmp_path / "liftcolor_expert" / "1.0.0")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    prompts = json.loads(r.stdout.strip().splitlines()[-1])
    targets = [draw_target(LIFT_COLOR, s) for s in range(4)]  # the expert succeeds on seeds 0..3
    assert prompts == [training_instruction(LIFT_COLOR, t, s) for s, t in enumerate(targets)]
    held_out = {t.format(target=c) for t in LIFT_COLOR.paraphrases for c in LIFT_COLOR.targets}
    assert not set(prompts) & held_out
    e = vla("eval", "--task", "LiftColor", "--episodes", "3", "--workers", "1", "--videos", "0", "--image-size", "32",
            "--factors", "paraphrase@2", "--instruction-ablation", "empty", "mismatched", "--out", str(tmp_path / "ev"))
    assert e.returncode == 0, e.stderr[-2000:]
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    lang = rep["language"]
    rows = {(x["condition"], x["target"]): x for x in lang["per_instruction"]}
    assert {t for c, t in rows if c == "nominal"} == {"red", "green", "blue"}  # seeds 1000..1002: one per colour
    mism = [x for (c, _), x in rows.items() if c == "instruction:mismatched"]
    assert sum(x["successes"] for x in mism) == 3 and all(x["habit"] == 0 for x in mism)
    assert {(a["condition"], a["drop"]) for a in lang["ablation"]} == {("instruction:empty", 0.0),
                                                                       ("instruction:mismatched", 0.0)}
    assert lang["paraphrase"][0]["retention"] == 1.0
    assert "## Language" in (tmp_path / "ev" / "report.md").read_text()
    assert "LiftColor instruction:mismatched: success 100.0% vs nominal 100.0% (drop +0.0%)" in e.stdout


@pytest.mark.slow  # building a Meta-World env (the MT10 benchmark) takes ~20-65 s here
def test_mt10_training_wordings_and_mismatch_on_metaworld():
    """Meta-World envs (no target attribute) take the training and mismatched wordings too."""
    from sim_eval.envs import make_env
    from sim_eval.factors import FactorSet

    info = task_info("push-v3")
    env = make_env("push-v3", image_size=32, factors=[Instruction("train")])
    try:
        said = [env.reset(s, render=False)["prompt"] for s in range(8)]
        assert said == [training_instruction(info, None, s) for s in range(8)] and set(said) == set(info.templates)
        env.factors = FactorSet([Instruction("mismatched")])
        env.factors.snapshot(env)
        other = env.reset(3, render=False)["prompt"]
        assert other != info.instruction and other in {task_info(t).instruction for t in suite_tasks("mt10")}
    finally:
        env.close()
