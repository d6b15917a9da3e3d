"""`vla eval` checks its inputs before any worker starts, evaluates a checkpoint under another embodiment
name at the checkpoint's image size, and never counts an errored episode as a failed one (the real
`vla` command in a subprocess, real checkpoints, real MuJoCo)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def vla(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL="egl", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "vla.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """run/policy: a Lift (robosuite_panda, 48 px) checkpoint inside a training run's folder;
    lab: the same robot fine-tuned under the name panda_lab, plus an 8-D-state arm."""
    from sim_eval.envs import robosuite_panda_spec
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    root = tmp_path_factory.mktemp("ckpts")
    panda = robosuite_panda_spec(48)
    VLAPolicy.create(tiny_config(), [panda]).save_pretrained(root / "run" / "policy")
    other = dataclasses.replace(panda, name="other_arm", state_dim=8, state_space="joint_pos7_gripper1")
    VLAPolicy.create(tiny_config(), [dataclasses.replace(panda, name="panda_lab"), other]).save_pretrained(root / "lab")
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_INPUTS = {
    "training_folder": (lambda r: ["--policy", str(r / "run")], "did you mean {root}/run/policy"),
    "missing_dir": (lambda r: ["--policy", str(r / "nope")], "--policy {root}/nope: no such directory"),
    "task_typo": (lambda r: ["--task", "Lfit"], "unknown task 'Lfit'"),
    "server_down": (lambda r: ["--policy", f"http://127.0.0.1:{_free_port()}"], "no vla serve policy answers there"),
    "lift_ckpt_on_mt10": (lambda r: ["--policy", str(r / "run" / "policy"), "--task", "reach-v3"],
                          "not 'metaworld_sawyer' (the robot of task 'reach-v3')"),
    "other_name": (lambda r: ["--policy", str(r / "lab")], "pass --embodiment NAME"),
    "other_robot": (lambda r: ["--policy", str(r / "lab"), "--embodiment", "other_arm"],
                    "embodiment 'other_arm' cannot drive task 'Lift' (robosuite_panda): state_dim 8 vs 9"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_before_any_episode(case, ckpts, tmp_path):
    make_args, expected = BAD_INPUTS[case]
    out = tmp_path / "report"
    p = vla("eval", *make_args(ckpts), "--episodes", "1", "--workers", "1", "--out", str(out), timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vla eval: error: "), p.stderr
    assert expected.format(root=ckpts) in lines[0]
    assert not out.exists()  # no report, no PNG of 0 %


def test_task_typo_same_wording_as_collect(tmp_path):
    ev = vla("eval", "--task", "Lfit", "--out", str(tmp_path / "r"), timeout=60)
    co = vla("collect", "--task", "Lfit", "--out", str(tmp_path / "d"), timeout=60)
    assert ev.returncode == co.returncode == 1
    assert ev.stderr.split("error: ", 1)[1] == co.stderr.split("error: ", 1)[1]


def test_embodiment_flag_and_checkpoint_image_size(ckpts, tmp_path):
    """A checkpoint fine-tuned as panda_lab drives Lift, at the spec's 48 px without --image-size."""
    p = vla("eval", "--policy", str(ckpts / "lab"), "--embodiment", "panda_lab", "--task", "Lift", "--episodes", "1",
            "--workers", "1", "--max-steps", "8", "--videos", "0", "--out", str(tmp_path))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meta"]["image_size"] == 48 and report["meta"]["embodiment"] == "panda_lab"
    (ep,) = report["episodes"]
    assert ep["seed"] == 1000  # evaluation seeds start apart from the demos' (vla collect starts at 0)
    assert ep["error"] == "" and ep["steps"] == 8 and ep["queries"] == 1 and ep["renders"] == 2
    assert "[robosuite" not in p.stderr  # install hints and controller INFO lines are filtered


def test_all_episodes_errored_exits_nonzero_without_plot(ckpts, tmp_path):
    """The checkpoint's JSON is fine (so the up-front check passes) but its weights are truncated: every
    episode errors while loading it. That is not a 0 % success rate."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ckpts / "run" / "policy", bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    out = tmp_path / "report"
    p = vla("eval", "--policy", str(bad), "--episodes", "2", "--workers", "1", "--max-steps", "8", "--out", str(out))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "all 2 episodes errored" in p.stderr and "Traceback" not in p.stderr
    assert not (out / "success.png").exists()
    report = json.loads((out / "report.json").read_text())
    (row,) = report["summary"]["rows"]
    assert row["n"] == 0 and row["errors"] == 2 and row["success_rate"] is None and row["ci95"] is None
    assert "| nominal | – | – | 0 | 2 |" in (out / "report.md").read_text()
