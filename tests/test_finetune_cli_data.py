"""``vla finetune`` on the user's own data, run as the real command: ``--mapping`` for unregistered data (per
dataset of a mixture), ``--cameras`` to fit a model's max_cameras (the real 4-camera Bridge sample), the
data mixture recorded in the run's config, reruns that extend to a new ``--steps`` or refuse other
data/batch settings, and a bad ``--data`` weight."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.finetune_helpers import toy_spec, write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "tests" / "data" / "bridge_dataset" / "1.0.0"  # real Bridge records (4 cameras), see its README
TINY = ["--preset", "tiny", "--batch-size", "2", "--warmup", "1", "--threads", "1", "--save-every", "100"]


def vla(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vla.cli", "finetune", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """A registered-by-writer dataset and an unregistered one (its embodiment file removed) + a hand-written mapping."""
    d = tmp_path_factory.mktemp("own")
    arm = write_toy_dataset(d / "arm", "toy_arm", episodes=2, steps=12)
    mine = write_toy_dataset(d / "mine", "lab_arm", episodes=2, steps=12, seed=1,
                             spec=toy_spec("lab_arm", action_dim=4, state_dim=5, cameras=("agentview", "wrist")))
    (mine / "vla_embodiment.json").unlink()
    mapping = d / "lab_arm.json"
    mapping.write_text(json.dumps({
        "name": "my_arm", "cameras": {"agentview": "steps/observation/agentview", "wrist": "steps/observation/wrist"},
        "action": ["steps/action"], "state": ["steps/observation/state"], "gripper": {"dims": [3]},
        "action_space": "joint_delta3_gripper1", "control_hz": 10}))
    return arm, mine, mapping


def test_bad_weight_is_named():
    done = vla("--data", f"{BRIDGE}:abc", "--out", "/nonexistent/out")
    assert done.returncode == 1 and "bad weight 'abc'" in done.stderr and "no such directory" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_mapping_mixture_record_refuse_and_extend(own_data, tmp_path):
    arm, mine, mapping = own_data
    out = tmp_path / "run"
    unregistered = vla("--data", str(mine), "--out", str(out), *TINY)
    assert unregistered.returncode == 1 and "--mapping" in unregistered.stderr, unregistered.stderr[-2000:]
    assert "Traceback" not in unregistered.stderr

    first = vla("--data", str(arm), f"{mine}:2", "--mapping", "-", str(mapping), "--cameras", "-", "wrist",
                "--out", str(out), "--steps", "2", *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    from vla.policy import VLAPolicy

    policy = VLAPolicy.from_pretrained(out / "policy")
    assert set(policy.embodiments) == {"toy_arm", "my_arm"}
    assert policy.spec("my_arm").cameras == ("wrist",) and policy.spec("my_arm").action_dim == 4
    recorded = json.loads((out / "train_config.json").read_text())["settings"]["data"]["datasets"]
    assert [(d["path"], d["weight"], d["mapping"], d["cameras"]) for d in recorded] == [
        (str(arm), 1.0, None, None), (str(mine), 2.0, str(mapping), ["wrist"])]
    meta = json.loads((out / "checkpoints" / "step_000002" / "training_state" / "meta.json").read_text())
    assert meta["settings"]["data"]["datasets"] == recorded

    changed = vla("--data", str(arm), f"{mine}:3", "--mapping", "-", str(mapping), "--cameras", "-", "wrist",
                  "--out", str(out), "--steps", "4", *TINY, "--batch-size", "3")
    assert changed.returncode == 1 and "Traceback" not in changed.stderr
    assert "weight: 2.0 -> 3.0" in changed.stderr and "batch_size: 2 -> 3" in changed.stderr
    assert "--no-resume" in changed.stderr

    extended = vla("--data", str(arm), f"{mine}:2", "--mapping", "-", str(mapping), "--cameras", "-", "wrist",
                   "--out", str(out), "--steps", "4", *TINY)
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert "resuming from" in extended.stdout and "trained 4 steps, resumed at step 2" in extended.stdout
    losses = [json.loads(x) for x in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    for r in losses[2:]:  # warmup 1, then cosine over the new 4 steps to 0.1 x lr
        factor = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (r["step"] - 1) / 3))
        assert r["lr"] == pytest.approx(3e-4 * factor, rel=1e-9)
    assert (out / "checkpoints" / "step_000004").is_dir()


@pytest.mark.slow
def test_cameras_fit_the_real_bridge_sample_to_the_model(tmp_path):
    bridge = tmp_path / "bridge_dataset" / "1.0.0"  # a copy: norm stats are cached beside the data
    shutil.copytree(BRIDGE, bridge)
    too_many = vla("--data", str(bridge), "--out", str(tmp_path / "no"), "--steps", "2", *TINY)
    assert too_many.returncode == 1 and "4 cameras" in too_many.stderr and "--cameras" in too_many.stderr
    done = vla("--data", str(bridge), "--cameras", "primary,wrist", "--out", str(tmp_path / "run"), "--steps", "2",
               *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 2 steps" in done.stdout
    spec = json.loads((tmp_path / "run" / "policy" / "embodiments" / "widowx_bridge.json").read_text())
    assert spec["cameras"] == ["primary", "wrist"]
