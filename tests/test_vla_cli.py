import subprocess
import sys
import time
from pathlib import Path

VLA = str(Path(sys.executable).with_name("vla"))


def test_help_is_instant_and_imports_nothing_heavy():
    code = (
        "import sys, vla.cli; vla.cli._build_parser().format_help(); "
        "heavy = [m for m in ('torch', 'tensorflow', 'robosuite', 'transformers', 'mujoco') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    t = time.perf_counter()
    res = subprocess.run([VLA, "--help"], capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    assert res.returncode == 0
    for sub in ("demo", "collect", "stats", "finetune", "eval", "serve", "predict", "info"):
        assert sub in res.stdout
    assert elapsed < 1.0, elapsed


def test_predict_and_info_on_a_checkpoint(tmp_path):
    from tests.vla_helpers import panda_spec
    from vla.config import tiny_config
    from vla.policy import VLAPolicy

    VLAPolicy.create(tiny_config(), [panda_spec()]).save_pretrained(tmp_path / "ckpt")
    res = subprocess.run([VLA, "predict", "--checkpoint", str(tmp_path / "ckpt"), "--repeat", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "action chunk (8, 7)" in res.stdout and "predict latency" in res.stdout
    assert "no --observation given: using random input" in res.stdout
    res = subprocess.run([VLA, "predict", "--checkpoint", str(tmp_path / "nope")], capture_output=True, text=True)
    assert res.returncode == 1 and "--checkpoint" in res.stderr and "no such directory" in res.stderr
    res = subprocess.run([VLA, "info", str(tmp_path / "ckpt")], capture_output=True, text=True)
    assert res.returncode == 0 and "panda: cameras=['agentview', 'wrist']" in res.stdout
    res = subprocess.run([VLA, "info", str(tmp_path / "nope")], capture_output=True, text=True)
    assert res.returncode == 1 and "no such directory" in res.stderr and "Traceback" not in res.stderr
