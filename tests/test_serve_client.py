"""Robot-side client: retries/timeouts, Policy protocol, chunk broker and async chunk blending."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import numpy as np
import pytest

from serve import wire
from serve.client import BlendingChunkBroker, ChunkBroker, RemotePolicy, RemotePolicyError
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation
from vla.types import Policy, PolicyMetadata


@pytest.fixture()
def obs():
    return toy_observation(toy_embodiments()[0], np.random.default_rng(0), size=32)


class CountingPolicy:
    """Chunk k (k = 0, 1, ...) is all k; optional latency per query."""

    def __init__(self, horizon=10, execute=6, latency_s=0.0):
        spec = toy_embodiments()[1]
        import dataclasses

        spec = dataclasses.replace(spec, execute_horizon=execute)
        self._meta = PolicyMetadata({spec.name: spec}, spec.name, horizon)
        self.latency_s = latency_s
        self.n = 0
        self.query_steps: list[int] = []
        self.seeds: list = []

    @property
    def metadata(self):
        return self._meta

    def reset(self):
        pass

    def predict(self, observations, *, embodiment=None, seed=None):
        self.query_steps.append(observations[0]["step"])
        self.seeds.append(seed)
        time.sleep(self.latency_s)
        k, self.n = self.n, self.n + 1
        return [np.full((self._meta.action_horizon, 6), float(k), np.float32)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_remote_policy_implements_policy_protocol(obs):
    with running_server(ToyPolicy(), max_wait_ms=0.0) as srv, RemotePolicy(srv.url) as remote:
        assert isinstance(remote, Policy)
        assert remote.metadata.action_horizon == 10 and remote.metadata.embodiments["toy_arm"].action_stats is not None
        broker = ChunkBroker(remote, execute_horizon=4, seed=2)
        actions = [broker.act(obs) for _ in range(10)]
        assert broker.queries == 3
        chunk = ToyPolicy().predict([obs], seed=2)[0]
        np.testing.assert_allclose(actions[:4], chunk[:4])
        np.testing.assert_allclose(actions[4:8], chunk[:4])


def test_connection_refused_is_retried_then_raises(obs):
    port = _free_port()
    remote = RemotePolicy(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01, connect_timeout_s=0.5)
    t = time.perf_counter()
    with pytest.raises(RemotePolicyError, match="after 3 attempts"):
        remote.act(obs)
    assert time.perf_counter() - t < 5
    remote.close()


def test_timeout_raises(obs):
    with (
        running_server(ToyPolicy(call_ms=1500), max_wait_ms=0.0) as srv,
        RemotePolicy(srv.url, timeout_s=0.3, retries=0) as remote,
        pytest.raises(RemotePolicyError, match="Timeout"),
    ):
        remote.act(obs)


def test_retry_on_503_then_success(obs):
    reply = wire.packb({"actions": np.ones((10, 7), np.float32), "embodiment": "toy_arm", "seed": 1, "timing": {}})
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(self.path)
            code, body = (503, b"busy") if len(hits) <= 2 else (200, reply)
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with RemotePolicy(f"http://127.0.0.1:{httpd.server_address[1]}", retries=2, backoff_s=0.01) as remote:
            assert remote.act(obs).actions.shape == (10, 7)
        assert len(hits) == 3
        hits.clear()
        with (
            RemotePolicy(f"http://127.0.0.1:{httpd.server_address[1]}", retries=1, backoff_s=0.01) as remote,
            pytest.raises(RemotePolicyError, match="503"),
        ):
            remote.act(obs)
    finally:
        httpd.shutdown()


def test_chunk_broker_queries_when_chunk_runs_out():
    pol = CountingPolicy(horizon=10, execute=6)
    broker = ChunkBroker(pol)
    out = [broker.act({"step": t})[0] for t in range(13)]
    assert pol.query_steps == [0, 6, 12]
    assert out == [0.0] * 6 + [1.0] * 6 + [2.0]


def test_blending_broker_prefetches_and_blends_overlap():
    pol = CountingPolicy(horizon=10, execute=6, latency_s=0.02)
    broker = BlendingChunkBroker(pol, prefetch_steps=3)
    out = []
    for t in range(12):
        out.append(float(broker.act({"step": t})[0]))
        time.sleep(0.03)  # a 33 Hz control loop; the query (20 ms) returns within ~1 tick
    broker.close()
    assert pol.query_steps[:2] == [0, 3], pol.query_steps  # the 2nd query starts 3 ticks before the chunk ends
    assert broker.stalls == 0
    assert out[:3] == [0.0, 0.0, 0.0]
    # once chunk 1 arrives, the schedule ramps from chunk 0's values to chunk 1's: monotone, strictly between
    ramp = [v for v in out[3:9] if 0.0 < v < 1.0]
    assert ramp and ramp == sorted(ramp), out
    assert out[8] >= out[5]


def test_blending_broker_waits_when_query_is_late():
    pol = CountingPolicy(horizon=10, execute=4, latency_s=0.2)
    broker = BlendingChunkBroker(pol, prefetch_steps=1)
    out = [float(broker.act({"step": t})[0]) for t in range(6)]  # no sleep: the robot outruns the server
    broker.close()
    assert broker.stalls >= 1
    assert out[:3] == [0.0] * 3 and 0.0 < out[4] <= 1.0


def test_example_robot_client_loop_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "robot_client_loop.py"
    spec = importlib.util.spec_from_file_location("robot_client_loop", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--self-serve", "--steps", "24", "--hz", "50"]) == 0
    out = capsys.readouterr().out
    assert "24 ticks at 50 Hz" in out and "stalls" in out


def test_cli_reports_client_and_server_errors_in_one_line(tmp_path, monkeypatch, capsys):
    """RemotePolicyError (unreachable server) and ServerBusy are user-facing: `vla <cmd>: error: ...`, rc 1."""
    from serve.batching import ServerBusy
    from vla import cli

    port = _free_port()
    (tmp_path / "probe_cmd.py").write_text(
        "from serve.batching import ServerBusy\n"
        "from serve.client import RemotePolicy\n"
        "def add_arguments(p):\n    p.add_argument('--busy', action='store_true')\n"
        "def main(args):\n"
        "    if args.busy:\n        raise ServerBusy('request queue full (3 waiting)')\n"
        f"    RemotePolicy('http://127.0.0.1:{port}', retries=0, connect_timeout_s=1).metadata\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "probe", ("probe_cmd", "query a server"))
    assert cli.main(["probe"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vla probe: error: GET http://127.0.0.1:") and "ConnectError" in err and "\n" not in err, err
    assert cli.main(["probe", "--busy"]) == 1
    assert capsys.readouterr().err.strip() == "vla probe: error: request queue full (3 waiting)"
    assert issubclass(RemotePolicyError, ConnectionError) and issubclass(ServerBusy, ConnectionError)


def test_chunk_broker_seed_per_tick_and_needs_observation():
    """What sim-eval rollouts rely on: a seed derived from the tick, and rendering only when a query comes."""
    pol = CountingPolicy(horizon=10, execute=6)
    broker = ChunkBroker(pol, seed=lambda t: 1000 + t)
    needs = []
    for t in range(13):
        needs.append(broker.needs_observation)
        broker.act({"step": t})
    assert pol.query_steps == [0, 6, 12] and pol.seeds == [1000, 1006, 1012]
    assert [t for t, n in enumerate(needs) if n] == [0, 6, 12]
    broker.reset()
    assert broker.needs_observation and broker.t == 0


def test_blending_broker_needs_observation_whenever_it_queries():
    pol = CountingPolicy(horizon=10, execute=6)  # no latency: each prefetch is done by the next tick
    broker = BlendingChunkBroker(pol, prefetch_steps=2, seed=7)
    flagged, queried = [], []
    for t in range(20):
        before, need = broker.queries, broker.needs_observation
        broker.act({"step": t})
        time.sleep(0.002)
        flagged.append(need)
        queried.append(broker.queries > before)
    broker.close()
    assert queried == flagged and sum(queried) >= 4, (queried, flagged)
    assert set(pol.seeds) == {7}


def test_bad_chunk_shape_is_a_clear_error():
    class Flat(CountingPolicy):
        def predict(self, observations, *, embodiment=None, seed=None):
            return [np.zeros(6, np.float32)]

    with pytest.raises(ValueError, match=r"chunk of shape \[6\], expected \[H, 6\]"):
        ChunkBroker(Flat(), action_dim=6).act({"step": 0})
