"""End to end: a real uvicorn server on loopback serving VLAPolicy(tiny_config), driven by the real
openpi-client package and by our HTTP client (JSON and msgpack); actions must equal local predict."""

from __future__ import annotations

import concurrent.futures
import threading

import httpx
import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from vla_helpers import toy_tiny_policy

from serve import wire
from serve.client import RemotePolicy
from serve.server import running_server
from serve.toy_policy import toy_embodiments, toy_observation
from vla.types import InvalidObservationError

ATOL = 1e-4


@pytest.fixture(scope="module")
def policy():
    return toy_tiny_policy()


@pytest.fixture(scope="module")
def server(policy):
    with running_server(policy, max_batch=8, max_wait_ms=50.0, adaptive_batching=False) as srv:
        yield srv


@pytest.fixture()
def obs():
    spec = toy_embodiments()[0]
    return toy_observation(spec, np.random.default_rng(7), size=48)


def test_openpi_client_websocket_matches_local_predict(server, policy, obs):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    meta = client.get_server_metadata()
    assert meta["default_embodiment"] == "toy_arm" and meta["action_horizon"] == policy.config.action_horizon
    out = client.infer({**obs, "seed": 11})
    local = policy.predict([obs], seed=11)[0]
    assert out["actions"].dtype == np.float32 and out["actions"].shape == local.shape == (8, 7)
    np.testing.assert_allclose(out["actions"], local, atol=ATOL)
    assert out["seed"] == 11 and out["server_timing"]["infer_ms"] > 0
    # openpi-style flat keys map to the same observation
    flat = {
        "observation/image": obs["images"]["agentview"],
        "observation/wrist_image": obs["images"]["wrist"],
        "observation/state": obs["state"],
        "prompt": obs["prompt"],
        "seed": 11,
    }
    np.testing.assert_allclose(client.infer(flat)["actions"], local, atol=ATOL)
    # CHW images (openpi ALOHA convention) are transposed
    chw = {
        "images": {c: np.ascontiguousarray(v.transpose(2, 0, 1)) for c, v in obs["images"].items()},
        "state": obs["state"],
        "prompt": obs["prompt"],
        "seed": 11,
    }
    np.testing.assert_allclose(client.infer(chw)["actions"], local, atol=ATOL)
    client._ws.close()


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_our_http_client_matches_local_predict(server, policy, obs, fmt):
    with RemotePolicy(server.url, fmt=fmt, timeout_s=60.0) as remote:
        assert set(remote.metadata.embodiments) == {"toy_arm", "toy_joint"}
        res = remote.act(obs, seed=5)
        np.testing.assert_allclose(res.actions, policy.predict([obs], seed=5)[0], atol=ATOL)
        assert res.timing["model_ms"] > 0 and res.round_trip_ms >= res.timing["model_ms"]
        # Policy protocol: a list of observations + one seed per observation
        rng = np.random.default_rng(3)
        batch = [toy_observation(toy_embodiments()[0], rng, size=40) for _ in range(3)]
        got = remote.predict(batch, seed=[1, 2, 3])
        for o, s, g in zip(batch, [1, 2, 3], got):
            np.testing.assert_allclose(g, policy.predict([o], seed=s)[0], atol=ATOL)


def test_embodiment_routing_and_unknown_embodiment(server, policy):
    spec = toy_embodiments()[1]
    o = toy_observation(spec, np.random.default_rng(1), size=32, prompt="")
    with RemotePolicy(server.url) as remote:
        got = remote.predict([o], embodiment="toy_joint", seed=4)[0]
    assert got.shape == (8, 6)
    np.testing.assert_allclose(got, policy.predict([o], embodiment="toy_joint", seed=4)[0], atol=ATOL)
    r = httpx.post(server.url + "/v1/act", json={**wire.observation_to_json(o), "embodiment": "ufo"})
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "embodiment" and "toy_arm" in body["expected"] and "toy_joint" in body["expected"]


def test_concurrent_clients_batched_equal_unbatched(server, policy):
    rng = np.random.default_rng(9)
    spec = toy_embodiments()[0]
    observations = [toy_observation(spec, rng, size=40, prompt=f"task {i}") for i in range(8)]
    before = dict(server.app.state.batcher.batch_hist)
    barrier = threading.Barrier(8)

    def one(i):
        with RemotePolicy(server.url, fmt="msgpack" if i % 2 else "json") as remote:
            barrier.wait()
            return remote.act(observations[i], seed=100 + i)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert max(r.timing["batch_size"] for r in results) > 1, "requests were not batched"
    after = server.app.state.batcher.batch_hist
    assert any(after.get(k, 0) > before.get(k, 0) for k in after if k > 1)
    for i, r in enumerate(results):
        alone = policy.predict([observations[i]], seed=100 + i)[0]
        np.testing.assert_allclose(r.actions, alone, atol=ATOL, err_msg=f"client {i}")


def test_remote_invalid_observation_raises_same_error_type(server, obs):
    bad = {**obs, "state": np.zeros(3, np.float32)}
    with RemotePolicy(server.url) as remote, pytest.raises(InvalidObservationError) as ei:
        remote.predict([bad], seed=0)
    assert ei.value.field == "state" and "[8]" in ei.value.expected and "[3]" in ei.value.got
