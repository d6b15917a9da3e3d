"""``vla collect --randomize``: per-episode factor draws, reproducible, recorded, disjoint from evaluation's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim_eval.factors import FactorSetting
from sim_eval.randomize import Randomize, parse_randomize
from sim_eval.seeds import EVAL_SEED

ROOT = Path(__file__).resolve().parents[1]
SEEDS = range(6)


def _run(args, timeout=300):
    """TensorFlow (writer, reader) must not share a process with MuJoCo's renderer: run apart, in the repo root."""
    env = dict(os.environ, MUJOCO_GL="egl", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_parse_errors_and_canonical_order():
    assert parse_randomize(["table_color@3", "lighting"]) == (Randomize("lighting", 2), Randomize("table_color", 3))
    for text, msg in [("weather", "unknown factor 'weather'; choose from ['camera_pose'"),
                      ("paraphrase", "held-out instructions"), ("lighting@0", "severity must be 1..3, got 0"),
                      ("lighting@x", "severity must be an integer"), ("lighting@4", "severity must be 1..3")]:
        with pytest.raises(ValueError, match=r"^--randomize '" + text + "': .*" + msg.replace("[", r"\[")):
            parse_randomize([text])
    with pytest.raises(ValueError, match="given twice"):
        parse_randomize(["lighting@1", "lighting@3"])
    with pytest.raises(ValueError, match="robosuite-only"):
        parse_randomize(["distractors"], suite="metaworld")


def test_severity_is_uniform_per_episode_and_per_factor():
    sev = np.array([Randomize("lighting", 2).severity(s) for s in range(600)])
    counts = np.bincount(sev, minlength=3)
    assert len(counts) == 3 and counts.min() > 160, counts  # ~200 each: 0 (nominal), 1, 2
    other = np.array([Randomize("table_color", 2).severity(s) for s in range(600)])
    assert 0.2 < (sev == other).mean() < 0.5  # factors draw independently (1/3 agree by chance)
    assert [Randomize("lighting", 2).severity(s) for s in range(600)] == sev.tolist()  # a pure function


def _surface(env):
    model = env.sim.model
    bid = model.body_name2id("table")
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid and model.geom_contype[g] == 0
            and model.geom_conaffinity[g] == 0]


def test_table_color_draws_are_applied_reproducible_and_not_evaluations():
    """Oracle: a nominal env whose table this test paints by hand with the recorded colour (severity 2:
    the colour; 1: half-way from the table's own colour) renders the randomized env's frame exactly."""
    from sim_eval.envs import make_env

    rand = make_env("Lift", image_size=48, cameras=("agentview",), factors=[Randomize("table_color", 2)])
    again = make_env("Lift", image_size=48, cameras=("agentview",), factors=[Randomize("table_color", 2)])
    plain = make_env("Lift", image_size=48, cameras=("agentview",))
    geoms = _surface(plain)
    model = plain.sim.model
    base = {g: np.array(model.mat_rgba[model.geom_matid[g]] if model.geom_matid[g] >= 0 else model.geom_rgba[g])
            for g in geoms}
    matid, rgba = model.geom_matid.copy(), model.geom_rgba.copy()
    drawn, sevs = {}, []
    for s in SEEDS:
        frame = rand.reset(s)["images"]["agentview"]
        d = rand.factors.drawn["table_color"]
        assert np.array_equal(again.reset(s)["images"]["agentview"], frame) and again.factors.drawn["table_color"] == d
        plain.reset(s, render=False)  # same robot and cube; the table painted next
        model.geom_matid[:], model.geom_rgba[:] = matid, rgba
        if d["severity"]:
            for g in geoms:
                model.geom_matid[g] = -1
                model.geom_rgba[g] = d["color"] if d["severity"] == 2 else 0.5 * base[g] + 0.5 * np.array(d["color"])
                model.geom_rgba[g, 3] = 1.0
            np.testing.assert_array_equal(rand.sim.model.geom_rgba[geoms], model.geom_rgba[geoms])
        assert np.array_equal(plain.render("agentview"), frame), (s, d)
        drawn[s], sevs = d, sevs + [d["severity"]]
    assert set(sevs) == {0, 1, 2}, sevs  # seeds 0..5 cover nominal and both severities
    colors = [tuple(d["color"]) for d in drawn.values() if "color" in d]
    assert len(set(colors)) == len(colors)  # a fresh colour per episode
    # evaluation's table_color@2 (factor seed 0) on its episode seeds, and even on collection's, never repeats one
    ev = make_env("Lift", image_size=48, cameras=("agentview",), factors=[FactorSetting("table_color", 2, 0)])
    eval_colors = set()
    for s in [*range(EVAL_SEED, EVAL_SEED + 6), *SEEDS]:
        ev.reset(s, render=False)
        eval_colors.add(tuple(float(v) for v in ev.sim.model.geom_rgba[_surface(ev)[0]]))
    assert not eval_colors & set(colors)
    for e in (rand, again, plain, ev):
        e.close()


_COLLECT_AND_READ = """
import hashlib, json, sys
def main():
    from sim_eval.collect import collect
    out = {}
    for key, seed, n in (("a", 0, 2), ("b", 0, 2), ("c", 7, 1)):
        s = collect("Lift", n, f"{sys.argv[1]}/{key}", workers=1, image_size=48, seed=seed, progress=False,
                    randomize=["lighting@3", "table_color", "distractors"])
        import tensorflow_datasets as tfds
        ds = tfds.builder_from_directory(s.path).as_dataset(split="train")
        out[key] = {int(e["episode_metadata"]["seed"]): {
            "rand": e["episode_metadata"]["randomization"].numpy().decode(),
            "frame": next(iter(e["steps"]))["observation"]["agentview"].numpy().tolist()} for e in ds}
        out[key + "_summary"] = json.load(open(f"{s.path}/collect_summary.json"))
    print(json.dumps(out))
if __name__ == "__main__":
    main()
"""


@pytest.mark.slow  # ~40 s on 2 cores: 5 expert episodes in 3 collections, then TFDS reads
def test_collect_twice_same_draws_recorded_as_applied(tmp_path):
    from sim_eval.envs import make_env

    p = _run(["-c", _COLLECT_AND_READ, str(tmp_path)], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    a, b, c = out["a"], out["b"], out["c"]
    assert sorted(a) == ["0", "1"] and a == b  # same command, same draws and same recorded frames
    assert out["a_summary"]["randomize"] == ["lighting@3", "table_color@2", "distractors@2"]
    assert out["a_summary"]["factor_seed"] not in (0, None)
    assert list(c) == ["7"] and all(c["7"]["rand"] != ep["rand"] for ep in a.values())
    # the metadata is what an env applies on that seed, and its first frame is what the episode recorded
    env = make_env("Lift", image_size=48, factors=parse_randomize(["lighting@3", "table_color", "distractors"]))
    for seed, ep in a.items():
        frame = env.reset(int(seed))["images"]["agentview"]
        meta = json.loads(ep["rand"])
        assert meta == json.loads(json.dumps(env.factors.drawn))
        assert set(meta) == {"lighting", "table_color", "distractors"}
        assert meta["distractors"]["n"] == 2 * meta["distractors"]["severity"]
        assert np.array_equal(np.array(ep["frame"], np.uint8), frame)
    env.close()


@pytest.mark.parametrize("args, msg", [
    (["--randomize", "xyz"], "vla collect: error: --randomize 'xyz': unknown factor 'xyz'; choose from ["),
    (["--randomize", "lighting", "paraphrase@1"], "vla collect: error: --randomize 'paraphrase@1': factor "
                                                  "'paraphrase' cannot be randomized"),
    (["--seed", "990"], "vla collect: error: --seed 990 with up to 14 attempts would use episode seeds 990..1003"),
])
def test_bad_randomize_is_one_line_through_the_cli(tmp_path, args, msg):
    p = _run(["-m", "vla.cli", "collect", "--task", "Lift", "--episodes", "2", "--out", str(tmp_path), *args])
    assert p.returncode == 1 and p.stderr.startswith(msg), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())  # nothing written


def test_object_size_recompiles_per_episode_to_the_recorded_scale():
    """The cube's geom sizes over a nominal env's are the recorded scale (1 +- 0.12 x severity), both signs
    occur, and only episodes whose scale changes rebuild the scene."""
    from sim_eval.envs import make_env

    plain = make_env("Lift", image_size=32, cameras=("agentview",))
    env = make_env("Lift", image_size=32, cameras=("agentview",), factors=[Randomize("object_size", 2)])

    def cube_sizes(e):
        m = e.sim.model
        return m.geom_size[[g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body_name2id("cube_main")]]

    nominal, scales = cube_sizes(plain), set()
    for s in range(12):
        env.reset(s, render=False)
        d = env.factors.drawn["object_size"]
        assert d["scale"] == pytest.approx(1 + 0.12 * d["severity"] * (1 if d["scale"] >= 1 else -1))
        np.testing.assert_allclose(cube_sizes(env) / nominal, d["scale"], rtol=1e-4)
        scales.add(d["scale"])
    assert {1.0} < scales and min(scales) < 1 < max(scales), scales
    env.close()
    plain.close()


def test_object_color_and_distractors_never_share_an_episode():
    """Oracle: independent uniform 0..2 draws give each factor a non-nominal severity in 2/3 of episodes and both
    in 4/9; with the pair exclusive, never both, and each keeps 2/9 + 4/9 / 2 = 4/9 of the episodes."""
    from sim_eval.envs import make_env
    from sim_eval.factors import episode_severities

    items = parse_randomize(["lighting", "object_color", "distractors"])
    sev = [episode_severities(items, s) for s in range(900)]
    both = [s for s in sev if s["object_color"] and s["distractors"]]
    assert not both
    for name in ("object_color", "distractors"):
        assert 0.39 < np.mean([s[name] > 0 for s in sev]) < 0.50, name
    assert [s["lighting"] for s in sev] == [Randomize("lighting", 2).severity(s) for s in range(900)]  # untouched
    env = make_env("Lift", image_size=32, cameras=("agentview",), factors=items)
    for s in range(8):
        env.reset(s, render=False)
        d = env.factors.drawn
        assert {k: v["severity"] for k, v in d.items()} == sev[s]
        assert d["distractors"].get("n", 0) == 2 * sev[s]["distractors"]
    env.close()


def _hue(rgb) -> float:
    import colorsys

    return colorsys.rgb_to_hsv(*rgb[:3])[0]


@pytest.mark.parametrize("task, task_hues", [
    ("Lift", [0.0]),  # the red(wood) cube
    ("LiftColor", [0.0, _hue((0.1, 0.7, 0.15)), _hue((0.1, 0.25, 0.9))]),  # its red, green and blue cubes
])
def test_distractors_are_never_the_color_of_a_task_object(task, task_hues):
    """Known answer: the task's objects are red (Lift), red/green/blue (LiftColor); 180 distractor colours of
    evaluation's distractors@3 keep >= 0.1 hue from each, and still spread over the rest of the hue circle."""
    from sim_eval.envs import make_env

    env = make_env(task, image_size=32, cameras=("agentview",), factors=[FactorSetting("distractors", 3, 0)])
    hues = []
    for s in range(EVAL_SEED, EVAL_SEED + 30):
        env.reset(s, render=False)
        m = env.sim.model
        hues += [_hue(m.geom_rgba[m.geom_name2id(f"distractor{i}_g")]) for i in range(6)]
    env.close()
    gaps = [min(min(abs(h - t) % 1, 1 - abs(h - t) % 1) for t in task_hues) for h in hues]
    assert len(hues) == 180 and min(gaps) >= 0.1, sorted(gaps)[:5]
    bins = np.histogram(hues, bins=10, range=(0, 1))[0]
    assert (bins > 0).sum() >= 10 - 2 * len(task_hues), bins
