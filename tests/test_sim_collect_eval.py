"""vla collect -> RLDS the data pipeline reads; vla eval -> JSON/Markdown/PNG/mp4 report."""

from __future__ import annotations

import json

import numpy as np
import pytest

_READ = """
import json, sys
from data_pipelines.sources import open_dataset
src = open_dataset(sys.argv[1])
eps = list(src.iter_episodes())
print(json.dumps({"n": len(src), "spec": src.spec.name, "eps": [
    {"T": int(e["actions"].shape[0]), "agentview": list(e["images"]["agentview"].shape),
     "wrist": list(e["images"]["wrist"].shape), "state": list(e["state"].shape), "prompt": e["prompt"],
     "last_grip": float(e["actions"][-1, 6])} for e in eps]}))
"""


def _run(args):
    """TensorFlow must not share a process with MuJoCo's llvmpipe renderer: run writer/reader apart
    (in the repository root)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, MUJOCO_GL="egl", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], cwd=Path(__file__).resolve().parents[1], env=env,
                          capture_output=True, text=True, timeout=300)


def test_collect_writes_rlds_the_pipeline_reads(tmp_path):
    args = ["-m", "vla.cli", "collect", "--task", "Lift", "--episodes", "2", "--out", str(tmp_path), "--workers", "1",
            "--image-size", "64"]
    p = _run(args)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.splitlines()[-1].startswith("Lift: recorded 2/2 successful episodes")  # a line of its own
    assert "discarded 0 failed" in p.stdout
    assert p.stderr.endswith("\n")  # the progress bar ends its line: nothing gets glued to it
    assert "[robosuite" not in p.stderr  # install hints and per-env controller notes are filtered
    path = tmp_path / "lift_expert" / "1.0.0"
    r = _run(["-c", _READ, str(path)])
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["n"] == 2 and info["spec"] == "robosuite_panda"
    for ep in info["eps"]:
        T = ep["T"]
        assert ep["agentview"] == [T, 64, 64, 3] and ep["wrist"] == [T, 64, 64, 3] and ep["state"] == [T, 9]
        assert ep["prompt"] == "pick up the red cube" and ep["last_grip"] == 1.0  # ends holding the cube
    summary = json.loads((path / "collect_summary.json").read_text())
    assert summary["recorded"] == 2 and summary["discarded"] == 0
    again = _run(args)  # into the existing dataset: one line naming the flag, the data untouched
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"vla collect: error: {path} already holds a dataset: pass --overwrite to replace it, "
        "or choose another --out/--name"], again.stderr
    assert json.loads((path / "collect_summary.json").read_text()) == summary


def test_collect_refuses_a_dataset_name_tfds_cannot_read_before_running(tmp_path):
    """A dot in --name made TFDS fail after every episode ran ("Could not find data files")."""
    p = _run(["-m", "vla.cli", "collect", "--task", "Lift", "--episodes", "1", "--out", str(tmp_path), "--workers",
              "1", "--name", "lift_n0.1"])
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        "vla collect: error: dataset name 'lift_n0.1': RLDS/TFDS dataset names hold only letters, digits and '_' "
        "(e.g. 'lift_n0_1')"], p.stderr
    assert not any(tmp_path.iterdir())


_COLLECT_THEN_READ = """
import dataclasses, json, sys
from sim_eval.collect import collect
s = collect("Lift", int(sys.argv[2]), sys.argv[1], workers=1, image_size=48, max_attempts=4, max_steps=int(sys.argv[3]),
            progress=False)  # MuJoCo runs in a worker process; TensorFlow (writer, reader) only here
import tensorflow_datasets as tfds
ds = tfds.builder_from_directory(s.path).as_dataset(split="train")
episodes = [{"seed": int(e["episode_metadata"]["seed"]), "T": len(list(e["steps"]))} for e in ds]
print(json.dumps({"summary": dataclasses.asdict(s), "episodes": episodes}))
"""


@pytest.mark.slow  # ~25 s: 4 expert episodes here, then collect + TFDS read in one subprocess
def test_collect_keeps_exactly_the_successful_episodes(tmp_path):
    """A step limit the expert misses on some seeds (known from running them here first) makes those
    episodes fail; the dataset read back with TFDS holds exactly the others, at their lengths."""

    from sim_eval.envs import make_env
    from sim_eval.experts import make_expert
    from sim_eval.rollout import Job, run_episode

    env = make_env("Lift", image_size=48)
    expert = make_expert("Lift", env=env)
    steps = {s: run_episode(env, expert, Job("Lift", s)).steps for s in range(4)}
    env.close()
    limit = sorted(steps.values())[1]
    kept = [s for s in range(4) if steps[s] <= limit]
    assert 0 < len(kept) < 4, steps  # the limit splits the seeds (Lift: 49, 44, 45, 55 steps)
    p = _run(["-c", _COLLECT_THEN_READ, str(tmp_path), str(len(kept)), str(limit)])
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    s, episodes = out["summary"], out["episodes"]
    tried = range(max(kept) + 1)  # seeds in order until enough succeeded
    assert (s["recorded"], s["discarded"], s["errors"]) == (len(kept), sum(steps[x] > limit for x in tried), 0)
    assert sorted(e["seed"] for e in episodes) == kept
    assert all(e["T"] == steps[e["seed"]] for e in episodes)


@pytest.mark.slow
def test_eval_writes_report(tmp_path, capsys):
    from vla.cli import main

    rc = main(["eval", "--policy", "expert", "--task", "Lift", "--factors", "lighting@2", "object_color@3",
               "--episodes", "2", "--workers", "2", "--image-size", "64", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads((tmp_path / "report.json").read_text())
    conds = [o["condition"] for o in report["summary"]["overall"]]
    assert conds == ["nominal", "lighting@2", "object_color@3"]
    for o in report["summary"]["overall"]:
        assert o["n"] == 2 and o["success_rate"] == 1.0 and o["ci95"][0] < 1.0
        assert o["retention"] == 1.0
    md = (tmp_path / "report.md").read_text()
    assert "| nominal | 100.0% |" in md and "Wilson" in md
    png = (tmp_path / "success.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    videos = sorted((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 6  # 2 per condition
    import av

    with av.open(str(videos[0])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) > 20 and frames[0].shape == (128, 256, 3)  # two 64 px cameras side by side, 2x upscaled
    assert frames[0].std() > 10


def test_wilson_interval():
    from sim_eval.report import wilson

    lo, hi = wilson(50, 50)
    assert hi == 1.0 and 0.92 < lo < 0.94
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.29
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(1 - hi)


class Still:
    """A picklable do-nothing Policy (8-step chunks of zeros) that looks at images."""

    def __init__(self, size=48):
        from sim_eval.envs import robosuite_panda_spec
        from vla.types import PolicyMetadata

        spec = robosuite_panda_spec(size)
        self.metadata = PolicyMetadata({spec.name: spec}, spec.name, 8)

    def predict(self, observations, *, embodiment=None, seed=None):
        return [np.zeros((8, 7), np.float32)]

    def reset(self):
        pass


def test_evaluate_api_with_policy_object(tmp_path):
    """The fine-tuning demo calls evaluate() with a live Policy object (pickled into the workers)."""
    from sim_eval.evaluate import evaluate

    rep = evaluate(Still(), ["Lift"], ["paraphrase@1"], episodes=1, workers=1, out_dir=tmp_path, image_size=48,
                   max_steps=16, progress=False)
    assert [o["success_rate"] for o in rep["summary"]["overall"]] == [0.0, 0.0]
    assert rep["episodes"][0]["queries"] == 2 and rep["episodes"][0]["renders"] == 4
    assert any("failure" in v for v in rep["videos"])
    # re-query every 4 actions instead of the embodiment's 8: twice the queries over the same 16 steps
    rep4 = evaluate(Still(), ["Lift"], (), episodes=1, workers=1, image_size=48, max_steps=16, progress=False,
                    execute_horizon=4)
    assert rep4["episodes"][0]["queries"] == 4


class Crash(Still):
    """A policy whose process dies of a native crash (SIGSEGV) at its first query."""

    def predict(self, observations, *, embodiment=None, seed=None):
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def test_a_worker_that_dies_errors_its_episodes_instead_of_hanging():
    """A sim worker killed by a native crash used to be replaced silently by the pool while its episode was
    waited for forever; now every unfinished episode comes back errored, naming the signal."""
    from sim_eval.evaluate import evaluate

    rep = evaluate(Crash(), ["Lift"], (), episodes=3, workers=1, image_size=48, max_steps=16, progress=False)
    assert len(rep["episodes"]) == 3 and all(e["success"] is False for e in rep["episodes"])
    assert rep["summary"]["overall"][0]["errors"] == 3 and rep["summary"]["overall"][0]["n"] == 0
    assert all("a sim worker process died (exit code" in e for e in rep["errors"]), rep["errors"]


def test_plot_handles_ci_round_off(tmp_path):
    """Wilson bounds at p=1 can sit a hair below p in floating point; the plot must not fail on it."""
    from sim_eval.report import plot, summarize, to_markdown
    from sim_eval.rollout import EpisodeResult

    results = [EpisodeResult(task="Lift", seed=s, condition=c, success=bool(ok), steps=40, queries=5, renders=10,
                             seconds=1.0) for c, oks in
               (("nominal", [1] * 6), ("object_size@3", [1, 1, 1, 1, 0, 1])) for s, ok in enumerate(oks)]
    summary = summarize(results)
    gap = {r["condition"]: r["gap_vs_nominal"] for r in summary["rows"]}
    assert gap["object_size@3"] == pytest.approx(-1 / 6) and summary["rows"][1]["failed_seeds"] == [4]
    report = {"meta": {"policy": "x", "tasks": ["Lift"], "episodes": 6, "seed": 0, "workers": 1, "seconds": 1.0},
              "summary": summary}
    plot(report, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 5000
    assert "| Lift | object_size@3 | 83.3% |" in to_markdown(report)
