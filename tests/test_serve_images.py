"""Compressed camera frames on the wire, against a real loopback server serving VLAPolicy(tiny_config).

Oracles: a PNG frame must give exactly the actions of the raw array (lossless); a JPEG frame the actions of
the same JPEG decoded independently by OpenCV (libjpeg, a peer decoder) and sent raw; the real openpi-client
carries JPEG bytes in its msgpack frames unchanged.  Bad frames: 400 naming the camera.
"""

from __future__ import annotations

import base64
import json

import cv2
import httpx
import numpy as np
import pytest
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from vla_client import images as codec
from vla_helpers import toy_tiny_policy

from serve import wire
from serve.client import RemotePolicy
from serve.server import running_server

ATOL = 1e-4


@pytest.fixture(scope="module")
def policy():
    return toy_tiny_policy()


@pytest.fixture(scope="module")
def server(policy):
    with running_server(policy, max_batch=4, max_wait_ms=0.0) as srv:
        yield srv


@pytest.fixture()
def obs():
    """Smooth frames (a gradient plus a disc) so JPEG is realistic, not noise."""
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
    disc = ((yy - 30) ** 2 + (xx - 20) ** 2 < 100)[..., None]
    frame = np.where(disc, np.uint8([200, 30, 30]), base).astype(np.uint8)
    return {
        "images": {"agentview": frame, "wrist": np.ascontiguousarray(frame[::-1])},
        "state": np.linspace(-1, 1, 8).astype(np.float32),
        "prompt": "lift the cube",
    }


def _cv2_decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[..., ::-1])


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_png_frames_give_the_raw_actions(server, policy, obs, fmt):
    with RemotePolicy(server.url, fmt=fmt, image_format="png") as remote:
        res = remote.act(obs, seed=3)
    np.testing.assert_allclose(res.actions, policy.predict([obs], seed=3)[0], atol=ATOL)


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_jpeg_frames_decode_like_opencv_and_are_smaller(server, policy, obs, fmt):
    url = f"{server.url}?image_format=jpeg&jpeg_quality=80"  # the URL form `vla eval --policy` uses
    with RemotePolicy(url, fmt=fmt) as remote, RemotePolicy(server.url, fmt="msgpack") as raw:
        assert remote.image_format == "jpeg" and remote.jpeg_quality == 80
        res = remote.act(obs, seed=4)
        raw_res = raw.act(obs, seed=4)
    peer = {c: _cv2_decode(codec.encode_image(v, "jpeg", 80)) for c, v in obs["images"].items()}
    assert not np.array_equal(peer["agentview"], obs["images"]["agentview"])  # lossy: the oracle differs
    np.testing.assert_allclose(res.actions, policy.predict([{**obs, "images": peer}], seed=4)[0], atol=ATOL)
    assert res.bytes_sent * 5 <= raw_res.bytes_sent, (res.bytes_sent, raw_res.bytes_sent)


def test_openpi_client_sends_jpeg_bytes(server, policy, obs):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    jpeg = {c: codec.encode_image(v, "jpeg", 90) for c, v in obs["images"].items()}
    out = client.infer({"observation/image": jpeg["agentview"], "observation/wrist_image": jpeg["wrist"],
                        "observation/state": obs["state"], "prompt": obs["prompt"], "seed": 5})
    client._ws.close()
    peer = {c: _cv2_decode(b) for c, b in jpeg.items()}
    np.testing.assert_allclose(out["actions"], policy.predict([{**obs, "images": peer}], seed=5)[0], atol=ATOL)


def test_mixed_raw_jpeg_and_data_uri_json(server, policy, obs):
    jpeg = codec.encode_image(obs["images"]["wrist"], "jpeg", 90)
    body = {"images": {"agentview": obs["images"]["agentview"].tolist(),
                       "wrist": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()},
            "state": obs["state"].tolist(), "prompt": obs["prompt"], "seed": 6}
    r = httpx.post(server.url + "/v1/act", json=body)
    assert r.status_code == 200, r.text
    expect = policy.predict([{**obs, "images": {**obs["images"], "wrist": _cv2_decode(jpeg)}}], seed=6)[0]
    np.testing.assert_allclose(np.asarray(r.json()["actions"], np.float32), expect, atol=ATOL)


def _bad_frames(obs):
    good = codec.encode_image(obs["images"]["wrist"], "jpeg", 90)
    return {
        "truncated jpeg": ("msgpack", good[: len(good) // 2], "undecodable jpeg"),
        "not an image": ("msgpack", b"GIF89a....", "neither JPEG nor PNG"),
        "corrupt png header": ("msgpack", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "undecodable png"),
        "bad base64": ("json", "not/base64!!", "invalid base64"),
        "base64 of garbage": ("json", base64.b64encode(b"\xff\xd8\xff" + b"x" * 50).decode(), "undecodable jpeg"),
    }


@pytest.mark.parametrize("case", ["truncated jpeg", "not an image", "corrupt png header", "bad base64",
                                  "base64 of garbage"])
def test_undecodable_frame_is_400_naming_the_camera(server, obs, case):
    fmt, frame, words = _bad_frames(obs)[case]
    body = {"images": {"agentview": obs["images"]["agentview"], "wrist": frame}, "state": obs["state"],
            "prompt": obs["prompt"]}
    if fmt == "json":
        body["images"]["agentview"] = body["images"]["agentview"].tolist()
        body["state"] = body["state"].tolist()
        r = httpx.post(server.url + "/v1/act", content=json.dumps(body), headers={"content-type": "application/json"})
    else:
        r = httpx.post(server.url + "/v1/act", content=wire.packb(body), headers={"content-type": wire.MSGPACK,
                                                                                  "accept": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["field"] == "images.wrist" and words in err["error"], err


def test_decompression_bomb_refused_from_the_header(server, obs):
    big = codec.encode_image(np.zeros((8, 8, 3), np.uint8), "png")
    # rewrite the IHDR size to 5000 x 5000 (crc no longer matters: the size check comes first)
    bomb = big[:16] + (5000).to_bytes(4, "big") * 2 + big[24:]
    r = httpx.post(server.url + "/v1/act", content=wire.packb({"images": {"wrist": bomb}, "state": obs["state"],
                                                              "prompt": "x"}),
                   headers={"content-type": wire.MSGPACK, "accept": "application/json"})
    assert r.status_code in (400, 413) and r.json()["field"] == "images.wrist", r.text


def test_client_options_are_checked():
    with pytest.raises(ValueError, match="unknown option"):
        RemotePolicy("http://127.0.0.1:9?imageformat=jpeg")
    with pytest.raises(ValueError, match="image format"):
        RemotePolicy("http://127.0.0.1:9", image_format="webp")
    with pytest.raises(ValueError, match="1..95"):
        RemotePolicy("http://127.0.0.1:9?image_format=jpeg&jpeg_quality=100")
