"""FastAPI app over any ``vla.types.Policy``: HTTP (JSON / msgpack) + openpi-protocol WebSocket.

Endpoints
  * ``POST /v1/act``: one observation (JSON nested lists, or ``application/msgpack`` with raw
    ndarray bytes, see ``serve.wire``) -> the action chunk float32[H, A] in robot units + timing.
    The answer's format follows ``Accept`` (default: the request's format).
  * ``GET /v1/metadata``: embodiments (cameras, dims, norm stats), default embodiment, horizon, model.
  * ``GET /healthz``: liveness + batching counters (never needs the API key).
  * ``WS /``: the openpi-client protocol: on connect the server sends the metadata as one
    msgpack-numpy frame; each binary frame in is an observation dict, each frame out is
    ``{"actions": float32[H, A], "embodiment", "seed", "server_timing": {...}}``.  A bad frame gets a
    *text* frame with a JSON error (openpi's client raises RuntimeError on text) and the socket stays open.

Status codes: 400 malformed body, 401 bad/missing API key, 413 body over the limit, 415 unknown
content type, 422 invalid observation / unknown embodiment (naming field, expected, got), 503 busy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve import wire
from serve.batching import DynamicBatcher, ServerBusy
from vla.types import InvalidObservationError, Policy, validate_observation

log = logging.getLogger("serve.app")
DEFAULT_MAX_BODY = 16 * 1024 * 1024


# -- schema models (documentation + response shapes) --------------------------------------------
class ActRequest(BaseModel):
    """JSON body of POST /v1/act (msgpack bodies have the same keys with ndarray values)."""

    images: dict[str, list[list[list[int]]]] = Field(description="camera -> uint8 image as nested lists [H][W][3]")
    state: list[float] | None = Field(None, description="robot state float[S] in robot units")
    prompt: str = Field("", description="language instruction")
    embodiment: str | None = Field(None, description="embodiment name (default: the policy's default)")
    seed: int | None = Field(None, ge=0, lt=2**32, description="noise seed; the same seed gives the same actions")


class Timing(BaseModel):
    queue_ms: float = Field(description="time waiting to be batched")
    model_ms: float = Field(description="the predict call that served this request")
    server_ms: float = Field(description="from body received to answer encoded")
    batch_size: int


class ActResponse(BaseModel):
    actions: list[list[float]] = Field(description="action chunk [H][A] in robot units")
    embodiment: str
    seed: int
    action_horizon: int
    action_dim: int
    timing: Timing


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
    expected: str | None = None
    got: str | None = None


_ERRORS = {
    code: {"model": ErrorBody, "description": desc}
    for code, desc in {
        400: "malformed JSON / msgpack",
        401: "missing or wrong API key",
        413: "body over the size limit",
        415: "unsupported content type",
        422: "invalid observation or unknown embodiment",
        503: "server busy or shutting down",
    }.items()
}


def _check_key(headers: Any, api_key: str | None) -> bool:
    if not api_key:
        return True
    candidates = []
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("api-key", "bearer", "apikey"):
        candidates.append(value.strip())
    for h in ("api-key", "x-api-key"):
        if headers.get(h):
            candidates.append(headers.get(h).strip())
    return any(secrets.compare_digest(c.encode(), api_key.encode()) for c in candidates)


def _error(status: int, message: str, **fields: str) -> JSONResponse:
    body = {"error": message, **{k: v for k, v in fields.items() if v}}
    headers = {"WWW-Authenticate": 'Api-Key realm="vla"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


class _Service:
    """The request path shared by HTTP and WebSocket: map -> route -> validate -> batch."""

    def __init__(self, policy: Policy, batcher: DynamicBatcher):
        self.policy = policy
        self.batcher = batcher
        self.meta = policy.metadata
        self.meta_dict = self.meta.to_dict()
        self._rng = np.random.default_rng()

    def parse(self, raw: Any) -> tuple[dict, str, int]:
        emb = raw.get("embodiment") if isinstance(raw, dict) else None
        emb = emb or self.meta.default_embodiment
        if not isinstance(emb, str) or emb not in self.meta.embodiments:
            known = sorted(self.meta.embodiments)
            raise wire.WireError(422, f"unknown embodiment {emb!r}; known: {known}", field="embodiment", expected=f"one of {known}", got=repr(emb)[:80])
        spec = self.meta.embodiments[emb]
        req = wire.to_observation(raw, spec.cameras)
        validate_observation(req.observation, spec)
        seed = req.seed if req.seed is not None else int(self._rng.integers(0, 2**31))
        return req.observation, emb, seed

    async def act(self, raw: Any):
        obs, emb, seed = self.parse(raw)
        return await self.batcher.submit(obs, emb, seed)


def create_app(
    policy: Policy,
    *,
    api_key: str | None = None,
    max_batch: int = 8,
    max_wait_ms: float = 5.0,
    adaptive_batching: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    title: str = "VLA policy server",
) -> FastAPI:
    """Build the app; the batcher starts/stops with the app's lifespan (graceful: queued work finishes)."""
    batcher = DynamicBatcher(policy, max_batch=max_batch, max_wait_ms=max_wait_ms, adaptive=adaptive_batching)
    service = _Service(policy, batcher)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        log.info("serving %s (max_batch=%d, max_wait_ms=%.1f)", service.meta.model or type(policy).__name__, max_batch, max_wait_ms)
        try:
            yield
        finally:
            await batcher.close()
            log.info("batcher closed after %d requests in %d batches", batcher.requests_served, batcher.batches_run)

    app = FastAPI(title=title, version="1", lifespan=lifespan, description=__doc__)
    app.state.batcher = batcher
    app.state.service = service

    @app.exception_handler(wire.WireError)
    async def _wire_error(request: Request, exc: wire.WireError):
        return _error(exc.status, str(exc), field=exc.field, expected=exc.expected, got=exc.got)

    @app.exception_handler(InvalidObservationError)
    async def _invalid_obs(request: Request, exc: InvalidObservationError):
        return _error(422, str(exc), field=exc.field, expected=exc.expected, got=exc.got)

    @app.exception_handler(ServerBusy)
    async def _busy(request: Request, exc: ServerBusy):
        return _error(503, str(exc))

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, Any]:
        """Liveness and batching counters."""
        return {
            "status": "ok",
            "requests_served": batcher.requests_served,
            "batches_run": batcher.batches_run,
            "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_hist.items())},
        }

    @app.get("/v1/metadata", tags=["policy"], responses={401: _ERRORS[401]})
    async def metadata(request: Request) -> dict[str, Any]:
        """Embodiments (cameras, dims, norm stats), default embodiment, action horizon, model."""
        if not _check_key(request.headers, api_key):
            return _error(401, "missing or wrong API key (send 'Authorization: Api-Key <key>' or 'Bearer <key>')")
        return service.meta_dict

    request_schema = ActRequest.model_json_schema()
    msgpack_schema = {
        **request_schema,
        "description": "the same keys as a msgpack map; arrays may be msgpack-numpy ndarrays with raw bytes (see serve.wire)",
    }
    msgpack_reply = {"type": "string", "format": "binary", "description": "the ActResponse keys as a msgpack map, actions as a float32 ndarray"}

    @app.post(
        "/v1/act",
        tags=["policy"],
        response_model=ActResponse,
        responses={200: {"content": {wire.MSGPACK: {"schema": msgpack_reply}}}, **_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema}, wire.MSGPACK: {"schema": msgpack_schema}},
            }
        },
    )
    async def act(request: Request):
        """Predict one action chunk (robot units) for one observation."""
        if not _check_key(request.headers, api_key):
            return _error(401, "missing or wrong API key (send 'Authorization: Api-Key <key>' or 'Bearer <key>')")
        body = await _read_body(request, max_body_bytes)
        t0 = time.perf_counter()
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        if ctype in (wire.MSGPACK, "application/x-msgpack"):
            raw, from_json = wire.unpackb(body), False
        elif ctype in ("application/json", "text/json"):
            raw, from_json = _loads_json(body), True
        else:
            return _error(415, f"unsupported content type {ctype!r}", field="content-type", expected=f"application/json or {wire.MSGPACK}", got=ctype)
        res = await service.act(raw)
        accept = (request.headers.get("accept") or "").lower()
        as_msgpack = wire.MSGPACK in accept or (not from_json and "json" not in accept)
        out: dict[str, Any] = {
            "actions": res.actions if as_msgpack else res.actions.tolist(),
            "embodiment": res.embodiment,
            "seed": res.seed,
            "action_horizon": int(res.actions.shape[0]),
            "action_dim": int(res.actions.shape[1]) if res.actions.ndim > 1 else 1,
            "timing": {"queue_ms": res.queue_ms, "model_ms": res.model_ms, "server_ms": 0.0, "batch_size": res.batch_size},
        }
        out["timing"]["server_ms"] = (time.perf_counter() - t0) * 1000.0
        if as_msgpack:
            return Response(wire.packb(out), media_type=wire.MSGPACK)
        return Response(json.dumps(out, separators=(",", ":")), media_type="application/json")

    @app.websocket("/")
    async def openpi_ws(websocket: WebSocket):
        if not _check_key(websocket.headers, api_key):
            with contextlib.suppress(Exception):
                await websocket.send_denial_response(_error(401, "missing or wrong API key"))
                return
            await websocket.close(code=1008, reason="missing or wrong API key")
            return
        await websocket.accept()
        try:
            await websocket.send_bytes(wire.packb(service.meta_dict))
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                await websocket.send(await _ws_reply(service, msg, max_body_bytes))
        except (WebSocketDisconnect, OSError):  # client went away (uvicorn's ClientDisconnected is an OSError)
            return
        except RuntimeError as e:  # sending on a socket the client already closed
            if websocket.client_state != WebSocketState.DISCONNECTED and websocket.application_state != WebSocketState.DISCONNECTED:
                log.warning("websocket ended: %s", e)

    return app


async def _ws_reply(service: _Service, msg: dict, max_bytes: int) -> dict:
    """One WS frame in -> one frame out (binary reply, or a text error frame)."""
    t0 = time.perf_counter()
    try:
        data = msg.get("bytes")
        if data is None:
            raise wire.WireError(400, "expected a binary msgpack frame, got a text frame", field="frame", expected="binary msgpack", got="text")
        raw = wire.unpackb(data, max_bytes=max_bytes)
        res = await service.act(raw)
    except (wire.WireError, InvalidObservationError, ServerBusy) as e:
        status = getattr(e, "status", 422 if isinstance(e, InvalidObservationError) else 503)
        err = {"error": str(e), "status": status}
        for k in ("field", "expected", "got"):
            if getattr(e, k, ""):
                err[k] = getattr(e, k)
        return {"type": "websocket.send", "text": json.dumps(err)}
    except Exception as e:  # model failure: report it on this socket, keep serving
        log.exception("inference failed on websocket")
        return {"type": "websocket.send", "text": json.dumps({"error": f"internal error: {type(e).__name__}: {e}", "status": 500})}
    out = {
        "actions": res.actions,
        "embodiment": res.embodiment,
        "seed": res.seed,
        "server_timing": {
            "infer_ms": res.model_ms,
            "queue_ms": res.queue_ms,
            "batch_size": res.batch_size,
            "server_ms": (time.perf_counter() - t0) * 1000.0,
        },
    }
    return {"type": "websocket.send", "bytes": wire.packb(out)}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise wire.WireError(400, f"bad Content-Length {declared!r}") from None
        if n > limit:
            raise wire.WireError(413, f"body of {n} bytes exceeds the limit of {limit} bytes", field="body", expected=f"<= {limit} bytes", got=f"{n} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise wire.WireError(413, f"body exceeds the limit of {limit} bytes", field="body", expected=f"<= {limit} bytes", got=f"> {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _loads_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise wire.WireError(400, f"malformed JSON: {e}") from None
