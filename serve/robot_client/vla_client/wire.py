"""Wire formats shared by the server and the robot-side client (numpy + msgpack only, no web deps).

ndarray encoding in msgpack (the msgpack-numpy layout that ``openpi_client.msgpack_numpy`` uses, so
frames interoperate both ways): an array becomes the map

    {"__ndarray__": True, "data": <raw bytes, C order>, "dtype": <numpy dtype.str, e.g. "|u1", "<f4">,
     "shape": [d0, d1, ...]}

and a numpy scalar becomes ``{"__npgeneric__": True, "data": <python value>, "dtype": <dtype.str>}``.
Keys may be msgpack bin (what openpi sends) or str.  Object, void and complex dtypes are refused.

JSON bodies carry arrays as nested lists (images: ints 0..255; state: floats); msgpack bodies may too.
A camera image may instead be an encoded frame (``vla_client.images``): JPEG/PNG file bytes in msgpack,
a base64 string (or ``data:image/jpeg;base64,`` URI) in JSON; it is decoded to uint8[H, W, 3] server-side.

Observation mapping (``to_observation``), accepted request shapes:
  * ours, nested: ``{"images": {cam: img}, "state": [...], "prompt": "..."}``;
  * openpi flat keys (the one home of that mapping, both ways: ``to_openpi`` writes them):
    ``"observation/<cam>"`` or ``"observation/images/<cam>"`` for a camera of the embodiment,
    ``"observation/image"`` -> its main camera, ``"observation/wrist_image"`` -> its wrist camera
    (see ``openpi_cameras``), ``"observation/state"`` -> state, ``"prompt"``;
  * images may be HWC or CHW (``[3, H, W]``, openpi's ALOHA convention); CHW is transposed to HWC.
Optional top-level keys: ``"embodiment"`` (name), ``"seed"`` (int noise seed), and for real-time
chunking ``"prev_actions"`` (float[k, A]: the previous chunk's actions not yet executed when the
observation was taken, robot units) with ``"delay_steps"`` (int d >= 0: how many of them execute
before the answer arrives; they come back unchanged as the chunk's first d rows).  Unknown keys are
refused with a message naming them (never silently dropped).  A camera may be left out (the model
masks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from . import images as codec

MSGPACK = "application/msgpack"
_REFUSED_KINDS = ("V", "O", "c")
_MAX_DIMS = 8


class WireError(ValueError):
    """Bad input on the wire. ``status`` is the HTTP status to answer; ``field/expected/got`` name it."""

    def __init__(self, status: int, message: str, *, field: str = "", expected: str = "", got: str = ""):
        super().__init__(message)
        self.status = status
        self.field = field
        self.expected = expected
        self.got = got

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"error": str(self)}
        if self.field or self.expected or self.got:
            d.update(field=self.field, expected=self.expected, got=self.got)
        return d


# -- msgpack-numpy ------------------------------------------------------------------------------
def _pack_default(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in _REFUSED_KINDS:
        raise TypeError(f"cannot encode numpy dtype {obj.dtype} (object/void/complex)")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": arr.dtype.str, b"shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, str, numbers, numpy arrays/scalars) as msgpack-numpy bytes."""
    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def _get(d: dict, key: str) -> Any:
    return d[key] if key in d else d.get(key.encode())


def _decode_array(obj: dict) -> Any:
    keys = {k.decode() if isinstance(k, bytes) else k for k in obj}
    if "__ndarray__" in keys:
        data, dtype, shape = _get(obj, "data"), _get(obj, "dtype"), _get(obj, "shape")
        if not isinstance(data, (bytes, bytearray)):
            raise WireError(
                400, "ndarray 'data' must be raw bytes", field="data", expected="bytes", got=type(data).__name__
            )
        if isinstance(dtype, bytes):
            dtype = dtype.decode("ascii", "replace")
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            raise WireError(
                400, f"unknown ndarray dtype {dtype!r}", field="dtype", expected="a numpy dtype string", got=repr(dtype)
            ) from None
        if dt.kind in _REFUSED_KINDS or dt.hasobject:
            raise WireError(
                400, f"refused ndarray dtype {dt}", field="dtype", expected="numeric/bool dtype", got=str(dt)
            )
        if (
            not isinstance(shape, (list, tuple))
            or len(shape) > _MAX_DIMS
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise WireError(
                400,
                f"bad ndarray shape {shape!r}",
                field="shape",
                expected="list of non-negative ints",
                got=repr(shape),
            )
        if math.prod(shape) * dt.itemsize != len(data):
            raise WireError(
                400,
                f"ndarray of shape {list(shape)} dtype {dt} needs {math.prod(shape) * dt.itemsize} bytes, "
                f"got {len(data)}",
                field="data",
                expected=f"{math.prod(shape) * dt.itemsize} bytes",
                got=f"{len(data)} bytes",
            )
        return np.frombuffer(bytearray(data), dtype=dt).reshape(shape)  # writable copy
    if "__npgeneric__" in keys:
        data, dtype = _get(obj, "data"), _get(obj, "dtype")
        try:
            dt = np.dtype(dtype.decode() if isinstance(dtype, bytes) else dtype)
            if dt.kind in _REFUSED_KINDS or dt.hasobject:
                raise TypeError
            return dt.type(data)
        except (TypeError, ValueError, OverflowError):
            raise WireError(400, f"bad numpy scalar dtype={dtype!r} data={data!r}", field="dtype") from None
    return obj


def _str_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _str_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_str_keys(v) for v in obj]
    return obj


def unpackb(data: bytes, *, max_bytes: int | None = None) -> Any:
    """Decode msgpack-numpy bytes; malformed input raises WireError(400). Map keys come back as str."""
    if max_bytes is not None and len(data) > max_bytes:
        raise WireError(413, f"payload of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        obj = msgpack.unpackb(data, object_hook=_decode_array, raw=False, strict_map_key=False)
    except WireError:
        raise
    except (
        ValueError,
        TypeError,
        msgpack.exceptions.ExtraData,
        msgpack.exceptions.UnpackException,
        RecursionError,
    ) as e:
        raise WireError(400, f"malformed msgpack: {type(e).__name__}: {e}") from None
    except Exception as e:  # msgpack raises a few odd types (e.g. StackError); never a 500 for bad bytes
        raise WireError(400, f"malformed msgpack: {type(e).__name__}: {e}") from None
    return _str_keys(obj)


# -- observation mapping ------------------------------------------------------------------------
def openpi_cameras(cameras: tuple[str, ...] | list[str]) -> tuple[str | None, str | None]:
    """(main, wrist): the cameras openpi's ``observation/image`` and ``observation/wrist_image`` stand for.

    wrist = the first camera whose name contains "wrist"; main = the first other camera (None if none).
    """
    cams = list(cameras)
    wrist = next((c for c in cams if "wrist" in c), None)
    main = next((c for c in cams if c != wrist), None)
    return main, wrist


def to_openpi(obs: dict[str, Any], cameras: tuple[str, ...] | list[str], **controls: Any) -> dict[str, Any]:
    """Our Observation -> openpi's flat LIBERO-style keys (what openpi servers and ``vla serve`` accept)."""
    main, wrist = openpi_cameras(cameras)
    images = obs.get("images", {})
    out: dict[str, Any] = {"prompt": obs.get("prompt", "")}
    if obs.get("state") is not None:
        out["observation/state"] = np.asarray(obs["state"], np.float32)
    for key, cam in (("observation/image", main), ("observation/wrist_image", wrist)):
        if cam is not None and images.get(cam) is not None:
            out[key] = images[cam]
    out.update({k: v for k, v in controls.items() if v is not None})
    return out


@dataclass(frozen=True)
class ParsedRequest:
    observation: dict[str, Any]
    embodiment: str | None
    seed: int | None
    prev_actions: np.ndarray | None = None  # float32[k, A] (shape checked against the embodiment by the server)
    delay_steps: int | None = None


_CONTROL_KEYS = {"embodiment", "seed", "prev_actions", "delay_steps"}


def _as_prev_actions(value: Any) -> np.ndarray | None:
    """``prev_actions`` as float32[k, A] (finite); the server checks A and k against the embodiment."""
    if value is None:
        return None
    if isinstance(value, list):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            raise WireError(422, "prev_actions: expected float[k, A] (a list of equal-length lists of numbers)",
                            field="prev_actions", expected="float[k, A]", got="ragged or non-numeric list") from None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        got = type(value).__name__ if not isinstance(value, np.ndarray) else f"dtype {value.dtype}"
        raise WireError(422, "prev_actions: expected a float array [k, A]", field="prev_actions",
                        expected="float[k, A]", got=got)
    if value.ndim != 2:
        raise WireError(422, "prev_actions: expected a 2-D array [k, A]", field="prev_actions",
                        expected="float[k, A]", got=f"shape {list(value.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = value.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise WireError(422, "prev_actions: values must be finite float32", field="prev_actions",
                        expected="finite float32 values", got="NaN, inf or out of float32 range")
    return arr


def _as_delay_steps(value: Any) -> int | None:
    if isinstance(value, np.integer):
        value = int(value)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(422, "delay_steps: expected an int >= 0", field="delay_steps", expected="int >= 0",
                        got=repr(value)[:40])
    return value


def _as_image(value: Any, field: str) -> np.ndarray:
    if isinstance(value, (bytes, bytearray, memoryview)):  # JPEG/PNG file bytes (msgpack)
        return codec.decode_image(bytes(value), field)
    if isinstance(value, str):  # base64 JPEG/PNG (JSON), optionally a data URI
        return codec.decode_image(codec.b64decode_field(value, field), field)
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, list):  # JSON (or msgpack) nested lists
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            raise WireError(
                422, f"{field}: ragged nested list", field=field, expected="uint8[H,W,3] nested list", got="ragged list"
            ) from None
        if arr.dtype.kind not in "iu" or arr.size == 0:
            raise WireError(
                422,
                f"{field}: expected integers 0..255",
                field=field,
                expected="integers 0..255",
                got=f"{arr.dtype} values",
            )
        if arr.min() < 0 or arr.max() > 255:
            raise WireError(
                422,
                f"{field}: values outside 0..255",
                field=field,
                expected="integers 0..255",
                got=f"range [{arr.min()}, {arr.max()}]",
            )
        arr = arr.astype(np.uint8)
    else:
        raise WireError(
            422, f"{field}: expected an image array", field=field, expected="uint8[H,W,3]", got=type(value).__name__
        )
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = np.ascontiguousarray(arr.transpose(1, 2, 0))  # CHW -> HWC
    return arr


def _as_state(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise WireError(
                422,
                "state: expected a flat list of numbers",
                field="state",
                expected="float[S]",
                got="non-numeric or nested list",
            )
        try:
            return np.asarray(value, dtype=np.float32)
        except (OverflowError, ValueError):
            raise WireError(
                422, "state: number out of float32 range", field="state", expected="float32 values", got="overflow"
            ) from None
    raise WireError(422, "state: expected an array", field="state", expected="float32[S]", got=type(value).__name__)


def to_observation(raw: Any, cameras: tuple[str, ...] | None = None) -> ParsedRequest:
    """Map a decoded request (ours or openpi-style, see module doc) to an Observation + controls."""
    if not isinstance(raw, dict):
        raise WireError(422, "request body must be a map/object", field="", expected="object", got=type(raw).__name__)
    images: dict[str, Any] = {}
    state = None
    prompt: Any = ""
    unknown: list[str] = []
    cams = tuple(cameras or ())
    for key, value in raw.items():
        if not isinstance(key, str):
            unknown.append(repr(key))
        elif key in _CONTROL_KEYS:
            continue
        elif key == "images":
            if not isinstance(value, dict):
                raise WireError(
                    422,
                    "images: expected a map camera -> image",
                    field="images",
                    expected="map camera -> uint8[H,W,3]",
                    got=type(value).__name__,
                )
            for cam, img in value.items():
                images[str(cam)] = img
        elif key in ("state", "observation/state"):
            state = value
        elif key == "prompt":
            prompt = value
        elif key.startswith("observation/"):
            name = key[len("observation/") :]
            name = name[len("images/") :] if name.startswith("images/") else name
            cam = name if name in cams else dict(zip(("image", "wrist_image"), openpi_cameras(cams))).get(name)
            if cam:
                images[cam] = value
            else:
                unknown.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise WireError(
            422,
            f"unknown request field(s) {unknown}",
            field=unknown[0],
            expected="images/state/prompt/embodiment/seed or observation/<camera>, observation/state",
            got=f"{unknown}",
        )
    obs: dict[str, Any] = {"images": {c: _as_image(v, f"images.{c}") for c, v in images.items() if v is not None}}
    if state is not None:
        obs["state"] = _as_state(state)
    if prompt is not None and not isinstance(prompt, str):
        raise WireError(422, "prompt: expected a string", field="prompt", expected="str", got=type(prompt).__name__)
    obs["prompt"] = prompt or ""
    emb = raw.get("embodiment")
    if emb is not None and not isinstance(emb, str):
        raise WireError(
            422, "embodiment: expected a string", field="embodiment", expected="str", got=type(emb).__name__
        )
    seed = raw.get("seed")
    if isinstance(seed, np.integer):
        seed = int(seed)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32):
        raise WireError(
            422, "seed: expected an int in [0, 2**32)", field="seed", expected="int in [0, 2**32)", got=repr(seed)[:40]
        )
    return ParsedRequest(observation=obs, embodiment=emb, seed=seed, prev_actions=_as_prev_actions(
        raw.get("prev_actions")), delay_steps=_as_delay_steps(raw.get("delay_steps")))


def observation_to_json(
    obs: dict[str, Any], *, image_format: str = "raw", jpeg_quality: int = 90, **controls: Any
) -> dict[str, Any]:
    """Our Observation -> a JSON-able body: images as nested lists (``raw``) or base64 JPEG/PNG."""
    frames = codec.encode_images(obs.get("images", {}), image_format, jpeg_quality)
    if image_format == "raw":
        body: dict[str, Any] = {"images": {c: np.asarray(v).tolist() for c, v in frames.items()}}
    else:
        body = {"images": {c: codec.to_base64(v) for c, v in frames.items() if v is not None}}
    if obs.get("state") is not None:
        body["state"] = np.asarray(obs["state"], dtype=np.float64).tolist()
    body["prompt"] = obs.get("prompt", "")
    body.update({k: _plain(v) for k, v in controls.items() if v is not None})
    return body


def _plain(v: Any) -> Any:
    """A control value as JSON: arrays (prev_actions) as nested lists of floats."""
    return np.asarray(v, np.float64).tolist() if isinstance(v, np.ndarray) else v


def observation_to_msgpack(
    obs: dict[str, Any], *, image_format: str = "raw", jpeg_quality: int = 90, **controls: Any
) -> bytes:
    """Our Observation -> msgpack-numpy bytes: images as raw ndarrays or JPEG/PNG file bytes."""
    frames = codec.encode_images(obs.get("images", {}), image_format, jpeg_quality)
    body: dict[str, Any] = {"images": {c: v for c, v in frames.items() if v is not None}}
    if obs.get("state") is not None:
        body["state"] = np.asarray(obs["state"])
    body["prompt"] = obs.get("prompt", "")
    body.update({k: v for k, v in controls.items() if v is not None})
    return packb(body)
