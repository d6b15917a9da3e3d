"""Real-time chunking over the wire: a real uvicorn server on loopback serving VLAPolicy(tiny_config),
driven by our HTTP client (JSON, msgpack) and the real openpi-client WebSocket; answers must equal local
``predict`` with the same prefix and seed, mixed prefix / no-prefix batches included; bad fields get 422."""

from __future__ import annotations

import concurrent.futures
import json
import threading

import httpx
import msgpack
import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from serve import wire
from serve.client import RemotePolicy
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation
from tests.vla_helpers import toy_tiny_policy
from vla.types import InvalidObservationError

ATOL = 1e-4


@pytest.fixture(scope="module")
def policy():
    return toy_tiny_policy(wake_zero_layers=True)


@pytest.fixture(scope="module")
def server(policy):
    with running_server(policy, max_batch=8, max_wait_ms=80.0, adaptive_batching=False) as srv:
        yield srv


@pytest.fixture()
def obs():
    return toy_observation(toy_embodiments()[0], np.random.default_rng(7), size=48)


@pytest.fixture()
def prev(policy):
    other = toy_observation(toy_embodiments()[0], np.random.default_rng(8), size=48)
    return policy.predict([other], seed=1)[0][2:]  # 6 rows of the old chunk not yet executed


def test_same_prefixed_answer_over_http_json_msgpack_and_openpi_ws(server, policy, obs, prev):
    d = 3
    local = policy.predict([obs], seed=11, prev_actions=[prev], delay_steps=d)[0]
    assert np.array_equal(local[:d], prev[:d])
    assert not np.allclose(local, policy.predict([obs], seed=11)[0], atol=1e-3)  # the prefix does matter
    for fmt in ("json", "msgpack"):
        with RemotePolicy(server.url, fmt=fmt) as remote:
            got = remote.act(obs, seed=11, prev_actions=prev, delay_steps=d).actions
            np.testing.assert_allclose(got, local, atol=ATOL, err_msg=fmt)
            assert remote.metadata.extra["real_time_chunking"] is True
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    out = client.infer({**obs, "seed": 11, "prev_actions": prev, "delay_steps": d})
    np.testing.assert_allclose(out["actions"], local, atol=ATOL)
    flat = wire.to_openpi(obs, toy_embodiments()[0].cameras, seed=11, prev_actions=prev, delay_steps=d)
    np.testing.assert_allclose(client.infer(flat)["actions"], local, atol=ATOL)
    np.testing.assert_allclose(client.infer({**obs, "seed": 11})["actions"], policy.predict([obs], seed=11)[0],
                               atol=ATOL)  # no prefix: today's answer
    client._ws.close()


def test_batch_mixing_prefix_and_no_prefix_equals_unbatched(server, policy, prev):
    rng = np.random.default_rng(9)
    spec = toy_embodiments()[0]
    observations = [toy_observation(spec, rng, size=40, prompt=f"task {i}") for i in range(6)]
    prefixes = [(prev, 2) if i % 2 else (None, None) for i in range(6)]
    barrier = threading.Barrier(6)

    def one(i):
        with RemotePolicy(server.url, fmt="msgpack" if i % 3 else "json") as remote:
            barrier.wait()
            return remote.act(observations[i], seed=100 + i, prev_actions=prefixes[i][0], delay_steps=prefixes[i][1])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert max(r.timing["batch_size"] for r in results) > 1, "requests were not batched"
    for i, r in enumerate(results):
        p, d = prefixes[i]
        alone = policy.predict([observations[i]], seed=100 + i, prev_actions=None if p is None else [p],
                               delay_steps=d)[0]
        np.testing.assert_allclose(r.actions, alone, atol=ATOL, err_msg=f"client {i}")


BAD = [
    ({"prev_actions": [[0.0] * 6] * 3, "delay_steps": 1}, "prev_actions", "[k, 7]"),
    ({"prev_actions": [[0.0] * 7] * 9}, "prev_actions", "at most 8"),
    ({"prev_actions": [0.1] * 7}, "prev_actions", "2-D"),
    ({"prev_actions": [[0.0] * 7, [0.0] * 6]}, "prev_actions", "ragged"),
    ({"prev_actions": [["a"] * 7]}, "prev_actions", "ragged or non-numeric"),
    ({"prev_actions": "fast"}, "prev_actions", "float"),
    ({"prev_actions": [[1e300] * 7]}, "prev_actions", "finite"),
    ({"prev_actions": [[0.0] * 7] * 3, "delay_steps": -1}, "delay_steps", ">= 0"),
    ({"prev_actions": [[0.0] * 7] * 3, "delay_steps": 4}, "delay_steps", "3 rows"),
    ({"prev_actions": [[0.0] * 7] * 8, "delay_steps": 9}, "delay_steps", "horizon 8"),
    ({"delay_steps": 2}, "delay_steps", "prev_actions"),
    ({"prev_actions": [[0.0] * 7], "delay_steps": 1.5}, "delay_steps", "int"),
    ({"prev_actions": [[0.0] * 7], "delay_steps": True}, "delay_steps", "int"),
]


@pytest.mark.parametrize("extra, field, text", BAD)
def test_bad_prefix_fields_get_422_naming_the_field(server, obs, extra, field, text):
    body = {**wire.observation_to_json(obs), **extra}
    r = httpx.post(server.url + "/v1/act", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and text in r.text


def test_bad_prefix_over_msgpack_and_websocket(server, obs):
    bad = {**obs, "prev_actions": np.zeros((3, 7), bool), "delay_steps": 1}
    r = httpx.post(server.url + "/v1/act", content=wire.packb(bad), headers={"Content-Type": wire.MSGPACK})
    assert r.status_code == 422 and r.json()["field"] == "prev_actions"
    raw = msgpack.packb({**wire.observation_to_json(obs), "delay_steps": 2**40,
                         "prev_actions": [[0.0] * 7]}, use_bin_type=True)
    r = httpx.post(server.url + "/v1/act", content=raw, headers={"Content-Type": wire.MSGPACK})
    assert r.status_code == 422 and r.json()["field"] == "delay_steps"
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    with pytest.raises(RuntimeError, match="delay_steps"):  # openpi's client raises on a text (error) frame
        client.infer({**obs, "prev_actions": np.zeros((2, 7), np.float32), "delay_steps": 5})
    assert client.infer({**obs, "seed": 1})["actions"].shape == (8, 7)  # the socket still serves
    client._ws.close()


def test_remote_policy_raises_the_local_error_type(server, obs):
    with RemotePolicy(server.url) as remote, pytest.raises(InvalidObservationError) as ei:
        remote.predict([obs], seed=0, prev_actions=[np.zeros((2, 5), np.float32)], delay_steps=1)
    assert ei.value.field == "prev_actions" and "[k, 7]" in ei.value.expected


class _NoRTCPolicy:
    """A Policy whose predict has no prev_actions (e.g. a scripted expert): prefixes are refused, not dropped."""

    def __init__(self):
        self._toy = ToyPolicy()
        self.metadata = self._toy.metadata

    def reset(self):
        pass

    def predict(self, observations, *, embodiment=None, seed=None):
        return self._toy.predict(observations, embodiment=embodiment, seed=seed)


def test_policy_without_rtc_refuses_a_prefix_with_422(obs):
    with running_server(_NoRTCPolicy(), max_wait_ms=0.0) as srv:
        body = {**wire.observation_to_json(obs), "prev_actions": [[0.0] * 7] * 2, "delay_steps": 1}
        r = httpx.post(srv.url + "/v1/act", json=body)
        assert r.status_code == 422 and r.json()["field"] == "prev_actions" and "real-time" in r.text
        empty = {**wire.observation_to_json(obs), "prev_actions": [], "delay_steps": 0}
        r = httpx.post(srv.url + "/v1/act", json=empty)
        assert r.status_code == 422 and r.json()["field"] == "prev_actions"  # [] is not [k, A]
        assert httpx.post(srv.url + "/v1/act", json=wire.observation_to_json(obs)).status_code == 200


class _RecordingToy(ToyPolicy):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.prefixes: list[tuple[int, int]] = []  # (rows of prev_actions, delay_steps) of each prefixed request

    def predict(self, observations, *, prev_actions=None, delay_steps=None, **kw):
        for p, d in zip(prev_actions or [], delay_steps or []):
            if p is not None:
                self.prefixes.append((len(p), d))
        return super().predict(observations, prev_actions=prev_actions, delay_steps=delay_steps, **kw)


def test_example_loop_runs_real_time_chunking_with_the_measured_delay(capsys):
    """examples/robot_client_loop.py against a server that takes 40 ms per call, at 50 Hz: the broker measures
    >= 40 ms (>= 2 ticks), sends its unexecuted actions with that delay, and switches after the old actions."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "robot_client_loop.py"
    spec = importlib.util.spec_from_file_location("robot_client_loop", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    toy = _RecordingToy(call_ms=40.0)
    with running_server(toy, max_wait_ms=0.0) as srv:
        assert example.main(["--url", srv.url, "--steps", "40", "--hz", "50"]) == 0
    out = capsys.readouterr().out
    assert "mode rtc" in out and "switches after" in out, out
    assert len(toy.prefixes) >= 3, toy.prefixes
    assert all(d >= 2 and k >= d for k, d in toy.prefixes), toy.prefixes  # 40 ms at 50 Hz: at least 2 ticks
