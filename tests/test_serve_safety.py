"""Bad input gets the right 4xx (never a 5xx), auth is enforced, the server keeps serving."""

from __future__ import annotations

import json
import threading
import time

import httpx
import msgpack
import numpy as np
import pytest
import websockets.sync.client
from openpi_client import msgpack_numpy
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from serve import wire
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation

KEY = "s3cret"
LIMIT = 200_000
AUTH = {"Authorization": f"Api-Key {KEY}"}
MP = {**AUTH, "Content-Type": wire.MSGPACK}


@pytest.fixture(scope="module")
def server():
    with running_server(ToyPolicy(), api_key=KEY, max_body_bytes=LIMIT, max_wait_ms=0.0) as srv:
        yield srv


@pytest.fixture()
def obs():
    return toy_observation(toy_embodiments()[0], np.random.default_rng(0), size=32)


def _alive(srv) -> None:
    assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200


def test_auth(server, obs):
    body = wire.observation_to_msgpack(obs)
    for headers in (
        {},
        {"Authorization": "Api-Key wrong"},
        {"Authorization": KEY},
        {"Authorization": "Basic czNjcmV0"},
    ):
        r = httpx.post(server.url + "/v1/act", content=body, headers={**headers, "Content-Type": wire.MSGPACK})
        assert r.status_code == 401, headers
        assert "Api-Key" in r.headers["www-authenticate"]
    assert httpx.get(server.url + "/v1/metadata").status_code == 401
    for headers in (AUTH, {"Authorization": f"Bearer {KEY}"}, {"Api-Key": KEY}):
        r = httpx.post(server.url + "/v1/act", content=body, headers={**headers, "Content-Type": wire.MSGPACK})
        assert r.status_code == 200, headers
    assert httpx.get(server.url + "/v1/metadata", headers=AUTH).json()["default_embodiment"] == "toy_arm"
    _alive(server)


def test_websocket_auth(server, obs):
    with pytest.raises(Exception) as ei:
        WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    assert "401" in str(ei.value)
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port, api_key=KEY)
    assert client.infer(obs)["actions"].shape == (10, 7)
    client._ws.close()


def test_malformed_bodies_get_400(server):
    for body in (b"\xc1", b"\x92\x01", b"\xdd\xff\xff\xff\xff", b"", b"\x81\xa3abc"):
        r = httpx.post(server.url + "/v1/act", content=body, headers=MP)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "msgpack" in r.json()["error"]
    r = httpx.post(server.url + "/v1/act", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = httpx.post(server.url + "/v1/act", content=b"x", headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 415
    # an ndarray whose byte count does not match its shape
    bad = msgpack.packb(
        {"images": {"agentview": {b"__ndarray__": True, b"data": b"\0" * 10, b"dtype": "|u1", b"shape": [32, 32, 3]}}}
    )
    r = httpx.post(server.url + "/v1/act", content=bad, headers=MP)
    assert r.status_code == 400 and r.json()["field"] == "data"
    bad = msgpack.packb(
        {"images": {"agentview": {b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]}}}
    )
    assert httpx.post(server.url + "/v1/act", content=bad, headers=MP).status_code == 400
    _alive(server)


def test_random_bytes_never_5xx(server, obs):
    rng = np.random.default_rng(1)
    good = wire.observation_to_msgpack(obs)
    with httpx.Client(base_url=server.url, headers=MP) as http:
        for i in range(150):
            if i % 2:
                body = rng.integers(0, 256, rng.integers(1, 300), dtype=np.uint8).tobytes()
            else:  # corrupt a valid body: flip bytes / truncate
                b = bytearray(good)
                for j in rng.integers(0, len(b), 5):
                    b[j] = rng.integers(0, 256)
                body = bytes(b[: rng.integers(1, len(b) + 1)])
            r = http.post("/v1/act", content=body)
            assert r.status_code < 500, (i, r.status_code, r.text)
    _alive(server)


def test_oversized_payload_413(server):
    big = np.zeros((300, 300, 3), np.uint8)
    body = wire.observation_to_msgpack({"images": {"agentview": big}, "state": np.zeros(8, np.float32), "prompt": "x"})
    assert len(body) > LIMIT
    r = httpx.post(server.url + "/v1/act", content=body, headers=MP)
    assert r.status_code == 413 and str(LIMIT) in r.json()["error"]

    def chunks():  # no Content-Length: the limit holds while streaming
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = httpx.post(server.url + "/v1/act", content=chunks(), headers=MP)
    assert r.status_code == 413
    _alive(server)


@pytest.mark.parametrize(
    "change, field, status",
    [
        (
            lambda o: o["images"].__setitem__("agentview", o["images"]["agentview"].astype(np.float32)),
            "images.agentview",
            422,
        ),
        (lambda o: o["images"].__setitem__("agentview", np.zeros((32, 32), np.uint8)), "images.agentview", 422),
        (lambda o: o["images"].__setitem__("thermal", np.zeros((32, 32, 3), np.uint8)), "images", 422),
        (lambda o: o.__setitem__("state", np.zeros(5, np.float32)), "state", 422),
        (lambda o: o.__setitem__("state", np.zeros(8, np.int64)), "state", 422),
        (lambda o: o.__setitem__("state", np.full(8, np.nan, np.float32)), "state", 422),
        (lambda o: o.__setitem__("prompt", 7), "prompt", 422),
        (lambda o: o.__setitem__("prompt", ""), "prompt", 422),
        (
            lambda o: o.__setitem__("observation/gripper_cam", np.zeros((32, 32, 3), np.uint8)),
            "observation/gripper_cam",
            422,
        ),
        (lambda o: o.__setitem__("seed", -1), "seed", 422),
        (lambda o: o.__setitem__("embodiment", "ufo"), "embodiment", 422),
    ],
)
def test_wrong_shapes_dtypes_422_name_the_field(server, obs, change, field, status):
    change(obs)
    r = httpx.post(server.url + "/v1/act", content=wire.packb(obs), headers=MP)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field and body["expected"] and body["got"], body


def test_json_validation(server, obs):
    j = wire.observation_to_json(obs)
    j["images"]["agentview"][0][0] = [1, 2]  # ragged
    r = httpx.post(server.url + "/v1/act", json=j, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "images.agentview"
    j = wire.observation_to_json(obs)
    j["images"]["agentview"][0][0][0] = 999
    r = httpx.post(server.url + "/v1/act", json=j, headers=AUTH)
    assert r.status_code == 422 and "0..255" in r.json()["expected"]
    for body in ([1, 2], "str", {"images": "no"}, {"images": {}, "state": [[1]]}):
        assert httpx.post(server.url + "/v1/act", json=body, headers=AUTH).status_code == 422


def test_websocket_bad_frames_get_error_frames_and_socket_keeps_serving(server, obs):
    other = WebsocketClientPolicy(host="127.0.0.1", port=server.port, api_key=KEY)
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/", additional_headers=AUTH, max_size=None) as ws:
        meta = msgpack_numpy.unpackb(ws.recv())
        assert "toy_arm" in meta["embodiments"]
        for frame in (
            "hello",
            b"\xc1\xc1",
            msgpack_numpy.packb({**obs, "state": np.zeros(3, np.float32)}),
            msgpack_numpy.packb([1, 2]),
        ):
            ws.send(frame)
            reply = ws.recv(timeout=10)
            assert isinstance(reply, str), frame
            err = json.loads(reply)
            assert err["status"] in (400, 422) and err["error"]
        assert json.loads(reply)["status"] == 422  # the list body
        ws.send(msgpack_numpy.packb({**obs, "seed": 3}))
        out = msgpack_numpy.unpackb(ws.recv(timeout=10))
        np.testing.assert_allclose(out["actions"], ToyPolicy().predict([obs], seed=3)[0])
        assert other.infer(obs)["actions"].shape == (10, 7)  # other sockets unaffected
    # an oversized frame closes that socket only
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/", additional_headers=AUTH, max_size=None) as ws:
        ws.recv()
        ws.send(b"\0" * (LIMIT + 10))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            ws.recv(timeout=10)
        assert ei.value.rcvd.code == 1009
    assert other.infer(obs)["actions"].shape == (10, 7)
    other._ws.close()
    _alive(server)


def test_graceful_shutdown_finishes_in_flight_requests(obs):
    policy = ToyPolicy(call_ms=600)
    results = {}
    with running_server(policy, max_wait_ms=0.0) as srv:

        def call():
            results["r"] = httpx.post(
                srv.url + "/v1/act",
                content=wire.packb({**obs, "seed": 1}),
                headers={"Content-Type": wire.MSGPACK},
                timeout=10,
            )

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.2)  # request is inside predict now
        srv.server.should_exit = True
        t.join(10)
        srv.thread.join(10)
        assert not srv.thread.is_alive(), "server did not stop"
    assert results["r"].status_code == 200
    np.testing.assert_allclose(wire.unpackb(results["r"].content)["actions"], ToyPolicy().predict([obs], seed=1)[0])
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/healthz", timeout=2)


def test_http_and_websocket_answer_bad_input_with_the_same_error(server, obs):
    """One error table: the same bad observation gets the same status and body over HTTP and WebSocket."""
    for bad in ({**obs, "state": np.zeros(3, np.float32)}, {**obs, "embodiment": "ufo"}, [1, 2]):
        r = httpx.post(server.url + "/v1/act", content=wire.packb(bad), headers=MP)
        with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/", additional_headers=AUTH) as ws:
            ws.recv()
            ws.send(wire.packb(bad))
            frame = json.loads(ws.recv(timeout=10))
        assert r.status_code == frame.pop("status") == 422 and r.json() == frame, (r.json(), frame)


def test_error_table_statuses():
    from fastapi import HTTPException

    from serve.app import Unauthorized, error_reply
    from serve.batching import ServerBusy
    from vla.types import InvalidObservationError

    assert error_reply(ServerBusy("queue full")) == (503, {"error": "queue full"})
    assert error_reply(Unauthorized("no key"))[0] == 401
    assert error_reply(wire.WireError(413, "too big", field="body", expected="<= 1", got="2")) == (
        413,
        {"error": "too big", "field": "body", "expected": "<= 1", "got": "2"},
    )
    status, body = error_reply(InvalidObservationError("state", "shape [8]", "shape [3]"))
    assert status == 422 and body["field"] == "state" and body["got"] == "shape [3]"
    assert error_reply(HTTPException(404, "Not Found"))[0] == 404
    assert error_reply(KeyError("boom"))[0] == 500
