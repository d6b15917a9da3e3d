"""The robot-side client installs and runs on a computer without torch (a fresh venv), as openpi-client does.

``serve/robot_client`` is built into a wheel, installed with its declared dependencies into a new
venv that has no torch, transformers or fastapi, and that venv's interpreter queries a real loopback
server started here; its answer must equal the policy's local ``predict``.  About 10 s (pip from the
local index).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import numpy as np

from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation

ROOT = Path(__file__).resolve().parents[1]

ROBOT_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    from vla_client import ChunkBroker, RemotePolicy
    url, obs_file = sys.argv[1], sys.argv[2]
    raw = np.load(obs_file)
    obs = {"images": {"agentview": raw["agentview"], "wrist": raw["wrist"]}, "state": raw["state"], "prompt": "pick"}
    with RemotePolicy(url) as remote:
        spec = remote.metadata.embodiments["toy_arm"]
        res = remote.act(obs, seed=2)
        broker = ChunkBroker(remote, execute_horizon=3, seed=2)
        executed = [broker.act(obs).tolist() for _ in range(4)]
    heavy = [m for m in ("torch", "transformers", "fastapi", "vla", "serve") if m in sys.modules]
    findable = [m for m in ("torch", "vla") if importlib.util.find_spec(m) is not None]
    print(json.dumps({"actions": res.actions.tolist(), "executed": executed, "queries": broker.queries,
                      "state_dim": spec.state_dim, "spec_type": type(spec).__module__,
                      "heavy": heavy, "findable": findable}))
""")


def _pip(python: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--disable-pip-version-check", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def test_client_installs_without_torch_and_serves_a_real_request(tmp_path):
    wheels, src = tmp_path / "wheels", tmp_path / "robot_client"  # build from a copy: no build/ in the source tree
    shutil.copytree(ROOT / "serve" / "robot_client", src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)]
    res = subprocess.run(wheel_cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (wheel,) = wheels.glob("vla_client-*.whl")
    venv.EnvBuilder(with_pip=False).create(tmp_path / "robot")
    python = tmp_path / "robot" / "bin" / "python"
    _pip(python, "numpy<2", str(wheel))  # its declared deps (msgpack, httpx) come from the index

    obs = toy_observation(toy_embodiments()[0], np.random.default_rng(3), size=32, prompt="pick")
    np.savez(tmp_path / "obs.npz", state=obs["state"], **obs["images"])
    (tmp_path / "robot.py").write_text(ROBOT_SCRIPT)
    with running_server(ToyPolicy(), max_wait_ms=0.0) as srv:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}  # the robot sees no repo
        out = subprocess.run(
            [str(python), str(tmp_path / "robot.py"), srv.url, str(tmp_path / "obs.npz")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["heavy"] == [] and got["findable"] == []  # nothing of the server side is there at all
    assert got["spec_type"] == "vla_client.types" and got["state_dim"] == 8
    expected = ToyPolicy().predict([obs], seed=2)[0]
    np.testing.assert_allclose(got["actions"], expected, atol=1e-6)
    np.testing.assert_allclose(got["executed"], np.concatenate([expected[:3], expected[:1]]), atol=1e-6)
    assert got["queries"] == 2
