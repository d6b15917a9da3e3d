"""The "query over HTTP from a robot controller" journey: no dead ends (issue 12, points 6-11).

Real loopback servers throughout; the example runs against a real, freshly saved checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import httpx
import jsonschema_rs  # schemathesis's validator: an independent JSON-Schema implementation
import msgpack
import numpy as np
import pytest
import websockets.sync.client

from serve import wire
from serve.client import RemotePolicy
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def toy_server():
    with running_server(ToyPolicy(), max_wait_ms=0.0) as srv:
        yield srv


@pytest.fixture()
def obs():
    return toy_observation(toy_embodiments()[0], np.random.default_rng(0), size=32)


def _example():
    spec = importlib.util.spec_from_file_location("robot_client_loop", ROOT / "examples" / "robot_client_loop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- 6: the example builds its robot from /v1/metadata ------------------------------------------
def test_example_runs_against_a_real_checkpoint(tmp_path, capsys):
    """The demo's Lift has a 9-dim state and 84x84 images: the example must not assume 8 / 96."""
    import torch

    from vla.config import tiny_config
    from vla.policy import VLAPolicy
    from vla.types import EmbodimentSpec

    torch.set_num_threads(1)
    spec = EmbodimentSpec(
        name="panda_lift",
        cameras=("agentview", "robot0_eye_in_hand"),
        state_dim=9,
        action_dim=7,
        gripper_dims=(6,),
        image_size=(48, 40),
        execute_horizon=4,
    )
    VLAPolicy.create(tiny_config(), embodiments=[spec], seed=0).save_pretrained(tmp_path / "policy")
    policy = VLAPolicy.from_pretrained(tmp_path / "policy")
    with running_server(policy, max_wait_ms=0.0) as srv:
        assert _example().main(["--url", srv.url, "--steps", "10", "--hz", "100", "--no-blend"]) == 0
        served = srv.app.state.batcher.requests_served
    out = capsys.readouterr().out
    assert "state_dim=9 action_dim=7" in out and "10 ticks at 100 Hz: 3 queries" in out, out
    assert served == 3


def test_example_toy_arm_matches_metadata():
    spec = toy_embodiments()[1]  # toy_joint: one camera, 6-dim state, 6-dim action
    arm = _example().ToyArm(spec, default_size=24)
    o = arm.observe("x")
    assert set(o["images"]) == {"front"} and o["images"]["front"].shape == (24, 24, 3)
    assert o["state"].shape == (6,) and o["state"].dtype == np.float32
    with pytest.raises(ValueError, match=r"expected \[6\]"):
        arm.step(np.zeros(7))


# -- 7: offline docs, a schema that says what is accepted, errors in the API's shape -------------
def test_docs_page_and_its_assets_are_served_locally(toy_server):
    page = httpx.get(toy_server.url + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for a in assets:
        assert a.startswith("/"), f"/docs loads {a} from outside the server"
        r = httpx.get(toy_server.url + a)
        assert r.status_code == 200 and len(r.content) > 500, a
    assert "SwaggerUIBundle" in httpx.get(toy_server.url + "/docs/static/swagger-ui-bundle.js").text
    assert "/openapi.json" in page.text and httpx.get(toy_server.url + "/openapi.json").status_code == 200


def _as_json_types(x):
    """A decoded msgpack body as a JSON-schema validator sees it (bin -> str, as OpenAPI's format: binary)."""
    if isinstance(x, dict):
        return {(k.decode() if isinstance(k, bytes) else k): _as_json_types(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_as_json_types(v) for v in x]
    return x.decode("latin-1") if isinstance(x, bytes) else x


def test_openapi_request_schema_accepts_what_the_server_accepts(toy_server, obs):
    spec = httpx.get(toy_server.url + "/openapi.json").json()
    content = spec["paths"]["/v1/act"]["post"]["requestBody"]["content"]
    as_json, as_msgpack = content["application/json"]["schema"], content["application/msgpack"]["schema"]
    wrist_missing = {"images": {"agentview": obs["images"]["agentview"]}, "state": obs["state"], "prompt": "go"}
    chw = {**obs, "images": {c: np.ascontiguousarray(v.transpose(2, 0, 1)) for c, v in obs["images"].items()}}
    openpi = wire.to_openpi(obs, ("agentview", "wrist"), seed=3)
    for body in (obs, wrist_missing, chw, openpi):
        packed = wire.packb(body)
        r = httpx.post(toy_server.url + "/v1/act", content=packed, headers={"Content-Type": wire.MSGPACK})
        assert r.status_code == 200, r.text  # the server takes it ...
        jsonschema_rs.validate(
            as_msgpack, _as_json_types(msgpack.unpackb(packed, raw=False))
        )  # ... and the schema says so
        as_lists = json.loads(json.dumps(body, default=lambda a: a.tolist()))
        jsonschema_rs.validate(as_json, as_lists)
        assert httpx.post(toy_server.url + "/v1/act", json=as_lists).status_code == 200
    ndarray = _as_json_types(msgpack.unpackb(wire.packb(obs), raw=False))["images"]["agentview"]
    image_schemas = as_msgpack["properties"]["images"]["additionalProperties"]["anyOf"]  # raw bytes, not only lists
    # ndarray map, JPEG/PNG file bytes, nested lists: an ndarray is only the first
    assert [jsonschema_rs.is_valid(s, ndarray) for s in image_schemas] == [True, False, False]
    with pytest.raises(jsonschema_rs.ValidationError):  # unknown keys are refused (422), and the schema says so too
        jsonschema_rs.validate(as_json, {**as_lists, "gripper_cam": []})
    assert httpx.post(toy_server.url + "/v1/act", json={**as_lists, "gripper_cam": []}).status_code == 422


def test_404_and_405_answer_in_the_api_error_shape(toy_server):
    r = httpx.get(toy_server.url + "/v2/act")
    assert r.status_code == 404 and r.json()["field"] == "path" and "/v2/act" in r.json()["error"]
    r = httpx.get(toy_server.url + "/v1/act")
    assert r.status_code == 405 and r.json()["expected"] == "POST" and r.json()["got"] == "GET"
    assert r.headers["allow"] == "POST"


# -- 8: a missing camera is served, with a warning -----------------------------------------------
def test_missing_camera_gets_200_with_a_warning(toy_server, obs):
    one_cam = {**obs, "images": {"agentview": obs["images"]["agentview"]}}
    with RemotePolicy(toy_server.url) as remote:
        res = remote.act(one_cam, seed=1)
        assert res.warnings == ["camera wrist missing: masked"]
        np.testing.assert_allclose(res.actions, ToyPolicy().predict([one_cam], seed=1)[0])
        assert remote.act(obs, seed=1).warnings == []
    r = httpx.post(toy_server.url + "/v1/act", json=json.loads(json.dumps(one_cam, default=lambda a: a.tolist())))
    assert r.status_code == 200 and r.json()["warnings"] == ["camera wrist missing: masked"]
    with websockets.sync.client.connect(f"ws://127.0.0.1:{toy_server.port}/", max_size=None) as ws:
        ws.recv()
        ws.send(wire.packb(one_cam))
        assert wire.unpackb(ws.recv(timeout=10))["warnings"] == ["camera wrist missing: masked"]


# -- 11: a URL without a scheme fails at once ----------------------------------------------------
def test_url_without_scheme_fails_at_once_with_the_fix():
    t = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape("did you mean 'http://127.0.0.1:8765'")):
        RemotePolicy("127.0.0.1:8765", retries=3, backoff_s=1.0)
    with pytest.raises(ValueError, match="openpi WebSocket"):
        RemotePolicy("ws://127.0.0.1:8765")
    assert time.perf_counter() - t < 0.5  # no retries, no backoff
