"""The OpenAPI description of what ``POST /v1/act`` accepts and answers (documentation + fuzzing).

Written as JSON Schema by hand because the accepted shapes are wider than one pydantic model:
per-camera images that may be left out, openpi's flat keys, HWC or CHW images, encoded frames
(JPEG/PNG: base64 in JSON, bin in msgpack), and in msgpack bodies raw-bytes ndarrays.
``serve.wire.to_observation`` is the implementation it describes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_PIXELS = {"type": "integer", "minimum": 0, "maximum": 255}
IMAGE_JSON: dict[str, Any] = {
    "type": "array",
    "description": "uint8 image as nested lists, HWC [H][W][3] or CHW [3][H][W] (transposed), ints 0..255",
    "items": {"type": "array", "items": {"type": "array", "items": _PIXELS}},
}
IMAGE_BASE64: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "description": "a JPEG or PNG file, base64 (or a 'data:image/jpeg;base64,...' URI); decoded server-side, "
    "400 naming the camera if it does not decode",
}
IMAGE_BYTES: dict[str, Any] = {
    "type": "string",
    "format": "binary",
    "description": "a JPEG or PNG file as msgpack bin; decoded server-side (400 naming the camera if it does not)",
}
NDARRAY: dict[str, Any] = {
    "type": "object",
    "description": "msgpack-numpy ndarray (the openpi_client.msgpack_numpy layout): raw C-order bytes; "
    "keys may be bin or str",
    "required": ["__ndarray__", "data", "dtype", "shape"],
    "properties": {
        "__ndarray__": {"type": "boolean", "enum": [True]},
        "data": {"type": "string", "format": "binary", "description": "prod(shape) * itemsize raw bytes"},
        "dtype": {"type": "string", "description": "numpy dtype.str: '|u1' for images, '<f4' for state"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 8},
    },
}
STATE_JSON: dict[str, Any] = {
    "type": "array",
    "items": {"type": "number"},
    "description": "robot state float[S] in robot units",
}


PREV_ACTIONS_JSON: dict[str, Any] = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "number"}},
    "description": "real-time chunking: the previous chunk's actions not yet executed when this observation was "
    "taken, float[k, A] in robot units (A = the embodiment's action dim, k <= the horizon); optional",
}


def _request(image: dict[str, Any], state: dict[str, Any], cameras: list[str],
             prev_actions: dict[str, Any] = PREV_ACTIONS_JSON) -> dict[str, Any]:
    flat_cams = {f"observation/{p}{c}": image for c in cameras for p in ("", "images/")}
    return {
        "type": "object",
        "description": (
            "One observation. Either our nested keys (images/state/prompt) or openpi's flat keys "
            "(observation/<camera>, observation/images/<camera>, observation/image = the main camera, "
            "observation/wrist_image = the wrist camera, observation/state). Any camera may be left out: "
            "it is masked and named in the response's warnings. Other keys are refused (422)."
        ),
        "properties": {
            "images": {
                "type": "object",
                "description": "camera name -> image (cameras: GET /v1/metadata)",
                "additionalProperties": image,
            },
            "state": state,
            "prompt": {"type": "string", "description": "language instruction"},
            "embodiment": {"type": "string", "description": "embodiment name (default: the policy's default)"},
            "seed": {
                "type": "integer",
                "minimum": 0,
                "maximum": 2**32 - 1,
                "description": "noise seed; the same seed gives the same actions, alone or batched",
            },
            "prev_actions": prev_actions,
            "delay_steps": {
                "type": "integer",
                "minimum": 0,
                "description": "real-time chunking: how many rows of prev_actions execute before this answer "
                "arrives (committed; returned unchanged as the chunk's first rows); <= rows of prev_actions",
            },
            "observation/state": state,
            "observation/image": image,
            "observation/wrist_image": image,
            **flat_cams,
        },
        "additionalProperties": False,
    }


def act_openapi(cameras: list[str]) -> dict[str, Any]:
    """``openapi_extra`` of ``POST /v1/act`` for a policy whose embodiments have ``cameras``."""
    as_json = _request({"anyOf": [IMAGE_BASE64, IMAGE_JSON]}, STATE_JSON, cameras)
    as_msgpack = _request({"anyOf": [NDARRAY, IMAGE_BYTES, IMAGE_JSON]}, {"anyOf": [NDARRAY, STATE_JSON]}, cameras,
                          {"anyOf": [NDARRAY, PREV_ACTIONS_JSON]})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": as_json}, "application/msgpack": {"schema": as_msgpack}},
        }
    }


REPLY_MSGPACK = {
    "type": "string",
    "format": "binary",
    "description": "the ActResponse keys as a msgpack map; actions as a float32 msgpack-numpy ndarray [H, A]",
}


class Timing(BaseModel):
    queue_ms: float = Field(description="time waiting to be batched")
    model_ms: float = Field(description="the predict call that served this request")
    server_ms: float = Field(description="from body received to answer encoded")
    batch_size: int = Field(description="requests of this embodiment in the predict call")
    window_size: int = Field(description="requests collected in the same batching window (all embodiments)")


class ActResponse(BaseModel):
    actions: list[list[float]] = Field(description="action chunk [H][A] in robot units")
    embodiment: str
    seed: int
    action_horizon: int
    action_dim: int
    warnings: list[str] = Field(description="served anyway, e.g. 'camera wrist missing: masked'")
    timing: Timing


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
    expected: str | None = None
    got: str | None = None


def error_responses(descriptions: dict[int, str]) -> dict[int, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": desc} for code, desc in descriptions.items()}
