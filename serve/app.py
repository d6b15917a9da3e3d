"""FastAPI app over any ``vla.types.Policy``: HTTP (JSON / msgpack) + openpi-protocol WebSocket.

Endpoints
  * ``POST /v1/act``: one observation (JSON nested lists, or ``application/msgpack`` with raw
    ndarray bytes, see ``serve.wire``; our keys or openpi's flat keys; any camera may be left out)
    -> the action chunk float32[H, A] in robot units, ``warnings`` (e.g. a masked camera) and timing.
    The answer's format follows ``Accept`` (default: the request's format).
  * ``GET /v1/metadata``: embodiments (cameras, dims, norm stats), default embodiment, horizon, model.
  * ``GET /healthz``: liveness + batching counters (never needs the API key).
  * ``GET /docs``: Swagger UI served from the installed ``swagger-ui-bundle`` (works offline).
  * ``WS /``: the openpi-client protocol: on connect the server sends the metadata as one
    msgpack-numpy frame; each binary frame in is an observation dict, each frame out is
    ``{"actions": float32[H, A], "embodiment", "seed", "warnings", "server_timing": {...}}``.  A bad
    frame gets a *text* frame with a JSON error (openpi's client raises RuntimeError on text) and
    the socket stays open.

Errors: one table (``STATUS_OF``) maps exceptions to statuses for HTTP answers and WebSocket error
frames alike: 400 malformed body, 401 bad/missing API key, 404/405 no such route/method, 413 body
over the limit, 415 unknown content type, 422 invalid observation / unknown embodiment (naming
field, expected, got), 503 busy; the body is always ``{"error", "field"?, "expected"?, "got"?}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve import schema, wire
from serve.batching import DynamicBatcher, Result, ServerBusy
from vla.types import InvalidObservationError, Policy, validate_observation

log = logging.getLogger("serve.app")
DEFAULT_MAX_BODY = 16 * 1024 * 1024
AUTH_HINT = "send 'Authorization: Api-Key <key>' or 'Bearer <key>'"


class Unauthorized(Exception):
    """Missing or wrong API key (401)."""


# -- the one error -> status table, for HTTP answers and WebSocket error frames ------------------
STATUS_OF: tuple[tuple[type[BaseException], int | None], ...] = (
    (Unauthorized, 401),
    (wire.WireError, None),  # carries its own status: 400 malformed, 413 too large, 415, 422 invalid
    (InvalidObservationError, 422),
    (ServerBusy, 503),
    (HTTPException, None),  # routing: 404 / 405
)


def error_reply(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) for ``exc``; anything not in ``STATUS_OF`` is a server fault (500)."""
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            status = status or getattr(exc, "status", None) or getattr(exc, "status_code", 500)
            body: dict[str, Any] = {"error": str(getattr(exc, "detail", "") or exc)}
            for key in ("field", "expected", "got"):
                if getattr(exc, key, ""):
                    body[key] = getattr(exc, key)
            return status, body
    return 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}


def _log_error(where: str, status: int, body: dict[str, Any]) -> None:
    """4xx at info with the field (never payload data), 5xx at error."""
    if status >= 500:
        log.error("%s -> %d %s", where, status, body["error"])
    else:
        log.info("%s -> %d field=%s: %s", where, status, body.get("field", "-"), body["error"][:200])


# -- the API key, one check as a dependency of every guarded route (HTTP and WebSocket) ----------
def key_matches(headers: Any, api_key: str | None) -> bool:
    if not api_key:
        return True
    candidates = []
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() in ("api-key", "bearer", "apikey"):
        candidates.append(value.strip())
    for h in ("api-key", "x-api-key"):
        if headers.get(h):
            candidates.append(headers.get(h).strip())
    return any(secrets.compare_digest(c.encode(), api_key.encode()) for c in candidates)


def require_api_key(api_key: str | None):
    """A FastAPI dependency raising ``Unauthorized`` unless the connection carries ``api_key``."""

    async def check(conn: HTTPConnection) -> None:
        if not key_matches(conn.headers, api_key):
            raise Unauthorized(f"missing or wrong API key ({AUTH_HINT})")

    return check


async def on_error(conn: HTTPConnection, exc: Exception) -> Response | None:
    """The one exception handler (HTTP and WebSocket handshake): status and body from ``error_reply``."""
    status, body = error_reply(exc)
    method = conn.scope.get("method", "WS")
    if isinstance(exc, HTTPException) and status in (404, 405):
        body = _routing_error(exc, method, conn.url.path)
    _log_error(f"{method} {conn.url.path}", status, body)
    headers = {"WWW-Authenticate": 'Api-Key realm="vla"'} if status == 401 else None
    if status == 405 and isinstance(exc, HTTPException) and exc.headers:
        headers = dict(exc.headers)
    response = JSONResponse(body, status_code=status, headers=headers)
    if isinstance(conn, WebSocket) and "websocket.http.response" not in conn.scope.get("extensions", {}):
        await conn.close(code=1008, reason=body["error"][:120])  # no denial responses on this server
        return None
    return response  # for a WebSocket: the handshake is denied with this status and body


def _routing_error(exc: HTTPException, method: str, path: str) -> dict[str, Any]:
    if exc.status_code == 404:
        return {"error": f"no route {method} {path} (see /docs)", "field": "path", "got": path}
    allowed = (exc.headers or {}).get("Allow", "")
    return {"error": f"method {method} not allowed on {path}", "field": "method", "expected": allowed, "got": method}


def install_error_handlers(app: FastAPI) -> None:
    for kind, _ in STATUS_OF:
        app.add_exception_handler(kind, on_error)
    app.add_exception_handler(RequestValidationError, on_error)
    app.add_exception_handler(Exception, on_error)


def supports_prefix(policy: Policy) -> bool:
    """Whether ``policy.predict`` takes real-time chunking's ``prev_actions`` / ``delay_steps``."""
    import inspect

    try:
        params = inspect.signature(policy.predict).parameters
    except (TypeError, ValueError):
        return False
    return "prev_actions" in params and "delay_steps" in params


class _Service:
    """The request path shared by HTTP and WebSocket: map -> route -> validate -> batch."""

    def __init__(self, policy: Policy, batcher: DynamicBatcher):
        self.batcher = batcher
        self.meta = policy.metadata
        self.meta_dict = self.meta.to_dict()
        self._rng = np.random.default_rng()
        self.supports_prefix = supports_prefix(policy)
        self.meta_dict["extra"] = {**self.meta_dict.get("extra", {}), "real_time_chunking": self.supports_prefix}

    def parse(self, raw: Any) -> tuple[dict, str, int, list[str], Any]:
        emb = raw.get("embodiment") if isinstance(raw, dict) else None
        emb = emb or self.meta.default_embodiment
        if not isinstance(emb, str) or emb not in self.meta.embodiments:
            known = sorted(self.meta.embodiments)
            raise wire.WireError(
                422,
                f"unknown embodiment {emb!r}; known: {known}",
                field="embodiment",
                expected=f"one of {known}",
                got=repr(emb)[:80],
            )
        spec = self.meta.embodiments[emb]
        req = wire.to_observation(raw, spec.cameras)
        validate_observation(req.observation, spec)
        seed = req.seed if req.seed is not None else int(self._rng.integers(0, 2**31))
        warnings = [f"camera {c} missing: masked" for c in spec.cameras if req.observation["images"].get(c) is None]
        return req.observation, emb, seed, warnings, self._prefix(req, spec)

    def _prefix(self, req: wire.ParsedRequest, spec) -> Any:
        """The request's real-time-chunking prefix, checked against the embodiment and horizon (None: none)."""
        from vla.model.rtc import check_prefix

        prefix = check_prefix(req.prev_actions, req.delay_steps, spec.action_dim, self.meta.action_horizon)
        if prefix is None or prefix.empty:
            return None
        if not self.supports_prefix:
            raise InvalidObservationError("prev_actions", "none: this policy does not support real-time chunking",
                                          f"{len(prefix.actions)} rows")
        return prefix

    async def act(self, raw: Any, via: str) -> tuple[Result, list[str]]:
        obs, emb, seed, warnings, prefix = self.parse(raw)
        res = await self.batcher.submit(obs, emb, seed, prefix)
        log.debug(
            "act via=%s embodiment=%s batch=%d window=%d queue_ms=%.1f model_ms=%.1f warnings=%d",
            via,
            emb,
            res.batch_size,
            res.window_size,
            res.queue_ms,
            res.model_ms,
            len(warnings),
        )
        return res, warnings


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
    from serve.docs import add_offline_docs

    batcher = DynamicBatcher(policy, max_batch=max_batch, max_wait_ms=max_wait_ms, adaptive=adaptive_batching)
    service = _Service(policy, batcher)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        log.info(
            "serving %s (max_batch=%d, max_wait_ms=%.1f)",
            service.meta.model or type(policy).__name__,
            max_batch,
            max_wait_ms,
        )
        try:
            yield
        finally:
            await batcher.close()
            log.info("batcher closed after %d requests in %d batches", batcher.requests_served, batcher.batches_run)

    app = FastAPI(title=title, version="1", lifespan=lifespan, description=__doc__, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.state.service = service
    add_offline_docs(app, title)
    guarded = [Depends(require_api_key(api_key))]

    install_error_handlers(app)

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, Any]:
        """Liveness and batching counters."""
        return {
            "status": "ok",
            "requests_served": batcher.requests_served,
            "batches_run": batcher.batches_run,
            "windows_run": batcher.windows_run,
            "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_hist.items())},
        }

    @app.get("/v1/metadata", tags=["policy"], dependencies=guarded, responses=schema.error_responses({401: AUTH_HINT}))
    async def metadata() -> dict[str, Any]:
        """Embodiments (cameras, dims, norm stats), default embodiment, action horizon, model."""
        return service.meta_dict

    @app.post(
        "/v1/act",
        tags=["policy"],
        dependencies=guarded,
        response_model=schema.ActResponse,
        responses={200: {"content": {wire.MSGPACK: {"schema": schema.REPLY_MSGPACK}}}, **_ACT_ERRORS},
        openapi_extra=schema.act_openapi(sorted({c for e in service.meta.embodiments.values() for c in e.cameras})),
    )
    async def act(request: Request) -> Response:
        """Predict one action chunk (robot units) for one observation."""
        return await _http_act(service, request, max_body_bytes)

    @app.websocket("/", dependencies=guarded)
    async def openpi_ws(websocket: WebSocket) -> None:
        await _serve_ws(service, websocket, max_body_bytes)

    return app


_ACT_ERRORS = schema.error_responses(
    {
        400: "malformed JSON / msgpack",
        401: AUTH_HINT,
        413: "body over the size limit",
        415: "unsupported content type",
        422: "invalid observation or unknown embodiment (names the field)",
        503: "server busy or shutting down",
    }
)


async def _http_act(service: _Service, request: Request, max_body_bytes: int) -> Response:
    """POST /v1/act: decode by Content-Type, serve, answer in the format ``Accept`` asks for."""
    body = await _read_body(request, max_body_bytes)
    t0 = time.perf_counter()
    ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if ctype in (wire.MSGPACK, "application/x-msgpack"):
        raw, from_json = wire.unpackb(body), False
    elif ctype in ("application/json", "text/json"):
        raw, from_json = _loads_json(body), True
    else:
        raise wire.WireError(
            415,
            f"unsupported content type {ctype!r}",
            field="content-type",
            expected=f"application/json or {wire.MSGPACK}",
            got=ctype,
        )
    res, warnings = await service.act(raw, via="http")
    accept = (request.headers.get("accept") or "").lower()
    as_msgpack = wire.MSGPACK in accept or (not from_json and "json" not in accept)
    out = _reply(res, warnings, as_msgpack)
    out["timing"]["server_ms"] = (time.perf_counter() - t0) * 1000.0
    if as_msgpack:
        return Response(wire.packb(out), media_type=wire.MSGPACK)
    return Response(json.dumps(out, separators=(",", ":")), media_type="application/json")


async def _serve_ws(service: _Service, websocket: WebSocket, max_body_bytes: int) -> None:
    """The openpi protocol on one socket: metadata first, then one reply frame per observation frame."""
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
        if WebSocketState.DISCONNECTED not in (websocket.client_state, websocket.application_state):
            log.warning("websocket ended: %s", e)


def _reply(res: Result, warnings: list[str], as_msgpack: bool) -> dict[str, Any]:
    return {
        "actions": res.actions if as_msgpack else res.actions.tolist(),
        "embodiment": res.embodiment,
        "seed": res.seed,
        "action_horizon": int(res.actions.shape[0]),
        "action_dim": int(res.actions.shape[1]) if res.actions.ndim > 1 else 1,
        "warnings": warnings,
        "timing": {
            "queue_ms": res.queue_ms,
            "model_ms": res.model_ms,
            "server_ms": 0.0,
            "batch_size": res.batch_size,
            "window_size": res.window_size,
        },
    }


async def _ws_reply(service: _Service, msg: dict, max_bytes: int) -> dict:
    """One WS frame in -> one frame out (binary reply, or a text error frame from the shared table)."""
    t0 = time.perf_counter()
    try:
        data = msg.get("bytes")
        if data is None:
            raise wire.WireError(
                400,
                "expected a binary msgpack frame, got a text frame",
                field="frame",
                expected="binary msgpack",
                got="text",
            )
        res, warnings = await service.act(wire.unpackb(data, max_bytes=max_bytes), via="ws")
    except Exception as e:  # bad frame or model failure: report it on this socket, keep serving
        status, body = error_reply(e)
        _log_error("WS frame", status, body)
        return {"type": "websocket.send", "text": json.dumps({**body, "status": status})}
    out = {
        "actions": res.actions,
        "embodiment": res.embodiment,
        "seed": res.seed,
        "warnings": warnings,
        "server_timing": {
            "infer_ms": res.model_ms,
            "queue_ms": res.queue_ms,
            "batch_size": res.batch_size,
            "window_size": res.window_size,
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
            raise wire.WireError(
                413,
                f"body of {n} bytes exceeds the limit of {limit} bytes",
                field="body",
                expected=f"<= {limit} bytes",
                got=f"{n} bytes",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise wire.WireError(
                413,
                f"body exceeds the limit of {limit} bytes",
                field="body",
                expected=f"<= {limit} bytes",
                got=f"> {limit} bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _loads_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise wire.WireError(400, f"malformed JSON: {e}") from None
