"""`vla serve --checkpoint DIR` as a real process: serves, matches local predict, stops on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from serve.toy_policy import toy_embodiments, toy_observation


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vla(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vla.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.vla_helpers import toy_tiny_policy

    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    toy_tiny_policy().save_pretrained(path)
    return path


def _wait_up(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.3)


@pytest.mark.slow
def test_vla_serve_checkpoint(checkpoint):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    from vla.policy import VLAPolicy

    port = _free_port()
    proc = _vla(
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
        "--api-key",
        "k",
        "--max-batch",
        "4",
        "--max-wait-ms",
        "2",
        "--log-level",
        "warning",
    )
    try:
        _wait_up(proc, port)
        obs = toy_observation(toy_embodiments()[0], np.random.default_rng(5), size=40)
        client = WebsocketClientPolicy("127.0.0.1", port, api_key="k")
        got = client.infer({**obs, "seed": 9})["actions"]
        client._ws.close()
        local = VLAPolicy.from_pretrained(checkpoint).predict([obs], seed=9)[0]
        np.testing.assert_allclose(got, local, atol=1e-4)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/metadata").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "embodiments=['toy_arm', 'toy_joint']" in out and "vla serve: stopped" in out


def test_vla_serve_toy_stops_on_sigint_after_in_flight_work():
    from serve import wire

    port = _free_port()
    proc = _vla("serve", "--toy", "--port", str(port), "--log-level", "warning")
    try:
        _wait_up(proc, port)
        obs = toy_observation(toy_embodiments()[0], np.random.default_rng(5), size=40)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/act", content=wire.packb(obs), headers={"Content-Type": wire.MSGPACK}
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "vla serve: stopped" in out, out


def test_vla_serve_bad_checkpoint(tmp_path):
    proc = _vla("serve", "--checkpoint", str(tmp_path / "missing"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "no such directory" in out and "Traceback" not in out
    proc = _vla("serve", "--checkpoint", str(tmp_path))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "config.json" in out


def test_vla_serve_training_run_dir_suggests_its_policy(tmp_path):
    (tmp_path / "run" / "policy").mkdir(parents=True)
    (tmp_path / "run" / "policy" / "config.json").write_text("{}")
    proc = _vla("serve", "--checkpoint", str(tmp_path / "run"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and f"did you mean {tmp_path / 'run' / 'policy'}" in out, out


def test_vla_serve_port_in_use_is_reported_before_loading_the_model(tmp_path):
    """The checkpoint's weights are garbage: an error about them would mean the model was loaded first."""
    (tmp_path / "config.json").write_text("{not json")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t = time.monotonic()
        proc = _vla("serve", "--checkpoint", str(tmp_path), "--port", str(port))
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and f"127.0.0.1:{port} is already in use" in out and "Traceback" not in out, out
    free = int(out.split("try --port ")[1].split()[0].rstrip(","))
    with socket.socket() as s:
        s.bind(("127.0.0.1", free))  # the suggested port is bindable
    assert time.monotonic() - t < 30


def test_vla_serve_logs_each_request_and_each_4xx_field_without_payload():
    from serve import wire

    port = _free_port()
    proc = _vla("serve", "--toy", "--port", str(port), "--log-level", "debug")
    try:
        _wait_up(proc, port)
        obs = toy_observation(toy_embodiments()[0], np.random.default_rng(5), size=40, prompt="secret instruction")
        url = f"http://127.0.0.1:{port}/v1/act"
        assert httpx.post(url, content=wire.packb(obs), headers={"Content-Type": wire.MSGPACK}).status_code == 200
        bad = {**obs, "state": np.zeros(3, np.float32)}
        assert httpx.post(url, content=wire.packb(bad), headers={"Content-Type": wire.MSGPACK}).status_code == 422
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "act via=http embodiment=toy_arm batch=1 window=1" in out and "model_ms=" in out, out
    assert "POST /v1/act -> 422 field=state" in out, out
    assert "secret instruction" not in out  # no payload data in the logs
