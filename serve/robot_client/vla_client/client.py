"""Robot-side HTTP client of ``vla serve`` (numpy + msgpack + httpx only; no torch, no web framework).

``RemotePolicy``: client of ``POST /v1/act`` (msgpack by default, JSON optional) with timeouts and
retries, implementing the ``vla.types.Policy`` shape so sim eval can evaluate a remote policy and
the chunk brokers (``vla_client.chunking``) can drive it.  A 422 from the server comes back as
``InvalidObservationError`` (same field/expected/got as a local ``predict``); other 4xx as
``RemotePolicyError``; connection errors, timeouts and 502/503/504 are retried with exponential
backoff; anything else (a URL without ``http://``, a protocol error) fails at once.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from . import images as codec
from . import wire
from .types import InvalidObservationError, PolicyMetadata, metadata_from_dict, per_observation_seeds

_RETRY_STATUS = (502, 503, 504)


class RemotePolicyError(ConnectionError):
    """The server refused the request (4xx other than 422), could not be reached, or kept failing.

    A ``ConnectionError`` (an ``OSError``), so the ``vla`` CLI reports it as one line, not a traceback.
    """

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ActResult:
    actions: np.ndarray  # float32[H, A], robot units
    embodiment: str
    seed: int
    timing: dict[str, float]  # server side: queue_ms, model_ms, server_ms, batch_size, window_size
    warnings: list[str]  # e.g. "camera wrist missing: masked" (the request was still served)
    round_trip_ms: float
    bytes_sent: int
    bytes_received: int


class RemotePolicy:
    """``vla.types.Policy`` over HTTP.  ``url`` like ``http://127.0.0.1:8000``."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        fmt: str = "msgpack",
        embodiment: str | None = None,
        max_parallel: int = 8,
        image_format: str | None = None,
        jpeg_quality: int | None = None,
    ):
        """``image_format``: how camera frames travel, ``raw`` arrays (default), ``jpeg`` at ``jpeg_quality``
        (1..95, default 90) or lossless ``png``; both may also come from the URL's query, e.g.
        ``http://robot-server:8000?image_format=jpeg&jpeg_quality=80`` (how ``vla eval --policy URL`` sets them)."""
        import httpx

        if fmt not in ("msgpack", "json"):
            raise ValueError(f"fmt must be 'msgpack' or 'json', got {fmt!r}")
        url, query = split_client_options(url)
        self.image_format = image_format or query.get("image_format", "raw")
        self.jpeg_quality = int(jpeg_quality or query.get("jpeg_quality", 90))
        codec.encode_images({}, self.image_format, self.jpeg_quality)  # validates the format name
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {self.jpeg_quality}")
        self.url = check_url(url)
        self.fmt = fmt
        self.embodiment = embodiment
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=max_parallel, max_keepalive_connections=max_parallel)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=limits,
        )
        self._httpx = httpx
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="remote-policy")
        self._metadata: PolicyMetadata | None = None

    # -- Policy protocol ---------------------------------------------------------------------
    @property
    def metadata(self) -> PolicyMetadata:
        if self._metadata is None:
            self._metadata = metadata_from_dict(self._request("GET", "/v1/metadata").json())
        return self._metadata

    def predict(
        self, observations: list[dict], *, embodiment: str | None = None, seed: int | Sequence[int] | None = None,
        prev_actions: Sequence[np.ndarray | None] | None = None, delay_steps: int | Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        """One chunk per observation; several observations go out concurrently (the server batches them).
        ``prev_actions`` / ``delay_steps``: real-time chunking, one per observation (see ``act``)."""
        seeds = per_observation_seeds(seed, len(observations))
        n = len(observations)
        prevs = list(prev_actions) if prev_actions is not None else [None] * n
        if delay_steps is None or isinstance(delay_steps, (int, np.integer)):
            delays = [None if p is None else delay_steps for p in prevs]
        else:
            delays = list(delay_steps)
        if len(prevs) != n or len(delays) != n:
            raise ValueError(f"prev_actions / delay_steps: need one entry per observation ({n})")
        kw = [{"embodiment": embodiment, "seed": s, "prev_actions": p, "delay_steps": d}
              for s, p, d in zip(seeds, prevs, delays)]
        if n == 1:
            return [self.act(observations[0], **kw[0]).actions]
        futs = [self._pool.submit(self.act, o, **k) for o, k in zip(observations, kw)]
        out = []
        for i, f in enumerate(futs):
            try:
                out.append(f.result().actions)
            except InvalidObservationError as e:  # re-index the field like a local batched predict
                raise InvalidObservationError(e.field, e.expected, e.got, i) from None
        return out

    def reset(self) -> None:
        pass

    # -- requests ----------------------------------------------------------------------------
    def act(self, observation: dict, *, embodiment: str | None = None, seed: int | None = None,
            prev_actions: np.ndarray | None = None, delay_steps: int | None = None) -> ActResult:
        """One ``POST /v1/act``.  ``prev_actions`` float[k, A] (robot units) + ``delay_steps`` d: real-time
        chunking (the server inpaints the chunk to agree with them; its first d rows are ``prev_actions[:d]``)."""
        controls = {"embodiment": embodiment or self.embodiment, "seed": None if seed is None else int(seed),
                    "prev_actions": None if prev_actions is None else np.asarray(prev_actions, np.float32),
                    "delay_steps": None if delay_steps is None else int(delay_steps)}
        frames = {"image_format": self.image_format, "jpeg_quality": self.jpeg_quality}
        if self.fmt == "msgpack":
            body = wire.observation_to_msgpack(observation, **frames, **controls)
            ctype = wire.MSGPACK
        else:
            import json

            body = json.dumps(
                wire.observation_to_json(observation, **frames, **controls), separators=(",", ":")
            ).encode()
            ctype = "application/json"
        t0 = time.perf_counter()
        resp = self._request("POST", "/v1/act", content=body, headers={"Content-Type": ctype, "Accept": ctype})
        rtt = (time.perf_counter() - t0) * 1000.0
        if self.fmt == "msgpack":
            d = wire.unpackb(resp.content)
            actions = np.asarray(d["actions"], np.float32)
        else:
            d = resp.json()
            actions = np.asarray(d["actions"], np.float32)
        return ActResult(
            actions=actions,
            embodiment=d["embodiment"],
            seed=int(d["seed"]),
            timing=d.get("timing", {}),
            warnings=list(d.get("warnings", [])),
            round_trip_ms=rtt,
            bytes_sent=len(body),
            bytes_received=len(resp.content),
        )

    def _request(self, method: str, path: str, **kw):
        err: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self._http.request(method, path, **kw)
            except _transient(self._httpx) as e:  # connect error, timeout, dropped connection
                err = e
                continue
            except self._httpx.HTTPError as e:  # not worth retrying (bad URL, local protocol error)
                raise RemotePolicyError(f"{method} {self.url}{path}: {type(e).__name__}: {e}") from e
            if resp.status_code in _RETRY_STATUS:
                err = RemotePolicyError(
                    f"{method} {path}: HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code
                )
                continue
            if resp.status_code == 422:
                body = _json_or_text(resp)
                if isinstance(body, dict) and body.get("field"):
                    field = body["field"]
                    exc = InvalidObservationError(field, body.get("expected", "?"), body.get("got", "?"))
                    exc.args = (f"server: {body.get('error', field)}",)
                    raise exc
                raise RemotePolicyError(f"{method} {path}: HTTP 422: {body}", 422, body)
            if resp.status_code >= 400:
                body = _json_or_text(resp)
                raise RemotePolicyError(f"{method} {path}: HTTP {resp.status_code}: {body}", resp.status_code, body)
            return resp
        raise RemotePolicyError(
            f"{method} {self.url}{path}: failed after {self.retries + 1} attempts: {type(err).__name__}: {err}"
        ) from err

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()

    def __enter__(self) -> RemotePolicy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _json_or_text(resp) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]


def _transient(httpx) -> tuple[type[Exception], ...]:
    """httpx errors worth a retry: the server may answer next time."""
    return (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


_CLIENT_OPTIONS = ("image_format", "jpeg_quality")


def split_client_options(url: str) -> tuple[str, dict[str, str]]:
    """``http://h:p?image_format=jpeg&jpeg_quality=80`` -> (``http://h:p``, options); unknown keys refused."""
    from urllib.parse import parse_qsl

    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_CLIENT_OPTIONS))
    if unknown:
        raise ValueError(f"RemotePolicy url {url!r}: unknown option(s) {unknown}; known: {list(_CLIENT_OPTIONS)}")
    if "jpeg_quality" in options and not options["jpeg_quality"].isdigit():
        raise ValueError(f"RemotePolicy url {url!r}: jpeg_quality must be an integer 1..95")
    return parts._replace(query="").geturl(), options


def check_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without the trailing slash; a ValueError naming the fix otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f" (did you mean 'http://{url}'?)" if "://" not in url else ""
        if parts.scheme in ("ws", "wss"):
            hint = " (ws:// is the openpi WebSocket protocol: use sim_eval.remote.OpenPIPolicy; this client is http://)"
        raise ValueError(f"RemotePolicy url {url!r}: expected http://host:port{hint}")
    return url.rstrip("/")
