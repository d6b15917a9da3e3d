"""A tiny ``vla demo`` run from the real command (2 demos, seconds of training, 2 nominal + 1 factor eval
episodes cut to a few steps): the merged report counts each condition's episodes as asked, its CIs are
Wilson score intervals, and a rerun into the same --out reuses the demos and resumes training."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL_FACTORS = {"camera_pose", "lighting", "table_color", "object_color", "object_size", "object_pose", "distractors",
               "paraphrase", "dynamics"}
ARGS = ["--randomize", "lighting@1", "table_color@2",
        "--demos", "1", "--randomized-demos", "1", "--train-minutes", "0.05", "--batch-size", "4",
        "--eval-episodes", "2", "--factor-episodes", "1", "--factors", "lighting@2", "--eval-max-steps", "8",
        "--workers", "1", "--train-processes", "1"]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval (z = 1.96), written from the formula (not the implementation under test)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def tfds_episodes(path: Path) -> list[str]:
    """Each recorded episode's ``randomization`` metadata, read back with TFDS (in a subprocess: TensorFlow stays
    out of the test process)."""
    code = ("import json, sys, tensorflow_datasets as tfds; ds = tfds.builder_from_directory(sys.argv[1])"
            ".as_dataset(split='train'); print(json.dumps([e['episode_metadata']['randomization'].numpy().decode() "
            "for e in ds]))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "MUJOCO_GL": "egl"}
    cmd = [sys.executable, "-m", "vla.cli", "demo", "--out", str(out), *ARGS, *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_tiny_demo_counts_wilson_cis_and_rerun_resumes(tmp_path):
    out = tmp_path / "demo"
    first = _demo(out)
    assert "collecting 1 scripted Lift demos (1 workers)" in first.stdout  # nominal, then randomized
    assert "collecting 1 scripted Lift demos (1 workers, randomizing lighting@1 table_color@2 per" in first.stdout
    # the report says which nuisance factors training saw and which stayed held out
    recipe = json.loads((out / "report" / "report.json").read_text())["meta"]["recipe"]
    assert recipe["randomized_in_training"] == ["lighting@1", "table_color@2"]
    assert sorted(recipe["held_out"]) == sorted(ALL_FACTORS - {"lighting", "table_color"})
    assert recipe["demos"] == {"lift_expert": {"weight": 1.0, "episodes": 1},
                               "lift_randomized": {"weight": 1.0, "episodes": 1}}
    assert ("demos: 1 lift_expert (weight 1) + 1 lift_randomized (weight 1); training randomized: lighting@1, "
            "table_color@2; held out (never in training): ") in first.stdout
    md = (out / "report" / "report.md").read_text().splitlines()  # the Markdown report says it too
    assert "- randomized in training: lighting@1, table_color@2" in md and "- demos `lift_randomized`: 1 episodes, " \
        "sampling weight 1" in md and any(x.startswith("- held out (never in training): camera_pose") for x in md)
    episodes = tfds_episodes(out / "data" / "lift_randomized" / "1.0.0")
    assert len(episodes) == 1 and all(set(json.loads(e)) == {"lighting", "table_color"} for e in episodes)
    nominal = json.loads((out / "data" / "lift_expert" / "1.0.0" / "collect_summary.json").read_text())
    assert nominal["randomize"] == [] and nominal["recorded"] == 1
    report = json.loads((out / "report" / "report.json").read_text())
    overall = {o["condition"]: o for o in report["summary"]["overall"]}
    assert {c: o["n"] for c, o in overall.items()} == {"nominal": 2, "lighting@2": 1}
    assert report["meta"]["episodes_per_condition"] == {"nominal": 2, "lighting@2": 1}
    for cond, o in overall.items():
        wins = sum(e["success"] for e in report["episodes"] if e["condition"] == cond)
        assert o["success_rate"] == pytest.approx(wins / o["n"])
        assert o["ci95"] == pytest.approx(wilson(wins, o["n"]), abs=1e-9)
    summary = out / "data" / "lift_randomized" / "1.0.0" / "collect_summary.json"
    collected = summary.stat().st_mtime_ns
    trained = [json.loads(x)["step"] for x in (out / "train" / "losses.jsonl").read_text().splitlines()]

    second = _demo(out, "--eval-episodes", "1", "--factors")  # what the rerun shows needs no factor eval
    assert "reusing lift_expert demos" in second.stdout and "reusing lift_randomized demos" in second.stdout
    assert "collecting" not in second.stdout
    assert summary.stat().st_mtime_ns == collected
    assert f"resuming from {out / 'train' / 'checkpoints'}" in second.stdout
    resumed = [json.loads(x)["step"] for x in (out / "train" / "losses.jsonl").read_text().splitlines()]
    assert resumed[:len(trained)] == trained and len(resumed) > len(trained)  # continued after the first run's steps


@pytest.mark.parametrize("args, msg", [
    (["--randomize", "none", "--randomized-demos", "5"],
     "--randomized-demos 5: there are no --randomize factors to draw"),
    (["--randomized-weight", "0"], "--randomized-weight 0.0: must be > 0"),
    (["--demos", "0", "--randomized-demos", "0"], "--demos 0 --randomized-demos 0: need >= 0 of each and some demos"),
    (["--image-encoder", "conv", "--image-freeze", "stages:1"],
     "--image-stage / --image-freeze apply to timm image encoders, not --image-encoder conv"),
    (["--image-freeze", "stages:3"], "image_freeze stages:3: beyond image_stage 2 (use K <= image_stage)"),
])
def test_bad_demo_sets_are_one_line_and_write_nothing(tmp_path, args, msg):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "vla.cli", "demo", "--out", str(tmp_path / "demo"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip() == f"vla demo: error: {msg}", done.stderr
    assert not (tmp_path / "demo").exists()
