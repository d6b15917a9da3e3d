"""Compressed camera frames on the wire: JPEG/PNG bytes (msgpack) or base64 strings (JSON).

Encoding (robot side) and decoding (server side) both use Pillow (libjpeg-turbo / zlib), imported
lazily so the client without it still sends raw arrays.  A request may mix raw and encoded cameras.

  * msgpack: ``images[cam]`` is ``bytes`` holding a JPEG or PNG file;
  * JSON: ``images[cam]`` is a base64 string of those bytes, optionally a data URI
    (``data:image/jpeg;base64,...``, what browsers and OpenVLA-style clients produce).

Decoded frames are uint8[H, W, 3] (grey/alpha/palette images converted to RGB).  Anything that does not
decode is a ``WireError(400)`` naming the camera; frames above ``MAX_PIXELS`` are refused before decoding.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np

FORMATS = ("raw", "jpeg", "png")
MAX_PIXELS = 4096 * 4096  # a decompression bomb is refused from its header, before any pixel is decoded
_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with the full project
        raise ImportError("JPEG/PNG frames need Pillow: pip install 'vla-client[images]' (or pillow)") from None
    return Image


def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """uint8[H, W, 3] -> JPEG (``quality`` 1..95, 4:2:0 subsampling) or PNG (lossless) file bytes."""
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"image format must be 'jpeg' or 'png', got {fmt!r}")
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"encode_image: expected uint8[H,W,3], got {arr.dtype}{list(arr.shape)}")
    if fmt == "jpeg" and not 1 <= int(quality) <= 95:
        raise ValueError(f"jpeg quality must be in 1..95, got {quality}")
    buf = io.BytesIO()
    img = _pil().fromarray(np.ascontiguousarray(arr), "RGB")
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=int(quality))
    else:
        img.save(buf, format="PNG", compress_level=1)  # fast; PNG is for exactness, not size
    return buf.getvalue()


def encode_images(images: dict[str, Any], fmt: str, quality: int = 90) -> dict[str, Any]:
    """Encode every camera of an Observation's ``images`` (``fmt`` "raw" leaves them as arrays)."""
    if fmt not in FORMATS:
        raise ValueError(f"image format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "raw":
        return dict(images)
    return {c: None if v is None else encode_image(v, fmt, quality) for c, v in images.items()}


def to_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_field(text: str, field: str) -> bytes:
    """A base64 string (or ``data:image/...;base64,`` URI) -> bytes; WireError(400) naming ``field``."""
    from .wire import WireError

    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise WireError(400, f"{field}: data URI must be 'data:image/<fmt>;base64,<data>'",
                            field=field, expected="base64 JPEG/PNG", got=head[:40])
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise WireError(400, f"{field}: invalid base64 ({e})", field=field,
                        expected="base64-encoded JPEG/PNG", got=f"{len(text)} chars") from None


def decode_image(data: bytes, field: str) -> np.ndarray:
    """JPEG/PNG bytes -> uint8[H, W, 3]; WireError(400) naming ``field`` when they do not decode."""
    from .wire import WireError

    kind = next((k for magic, k in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise WireError(400, f"{field}: bytes are neither JPEG nor PNG (first bytes {bytes(data[:4])!r})",
                        field=field, expected="JPEG or PNG file bytes", got=f"{len(data)} bytes")
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data), formats=[kind.upper()]) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise WireError(413, f"{field}: {kind} of {w}x{h} exceeds {MAX_PIXELS} pixels",
                                field=field, expected=f"<= {MAX_PIXELS} pixels", got=f"{w}x{h}")
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy downstream)
    except WireError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise WireError(400, f"{field}: undecodable {kind}: {type(e).__name__}: {e}", field=field,
                        expected=f"a valid {kind} file", got=f"{len(data)} bytes") from None
