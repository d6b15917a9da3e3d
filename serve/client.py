"""Robot-side client (numpy + msgpack + httpx only; no torch, no web framework).

* ``RemotePolicy``: HTTP client of ``POST /v1/act`` (msgpack by default, JSON optional) with
  timeouts and retries, implementing ``vla.types.Policy`` so sim eval can evaluate a remote policy.
  A 422 from the server comes back as ``InvalidObservationError`` (same field/expected/got as a
  local ``predict``); other 4xx as ``RemotePolicyError``; connection errors, timeouts and 502/503/504
  are retried with exponential backoff.
* ``ChunkBroker``: one action per control step; queries the policy only when the executed part
  of the chunk (``execute_horizon`` steps) runs out.
* ``BlendingChunkBroker``: starts the next query ``prefetch_steps`` before the chunk ends (in a
  background thread, so the control loop keeps running), then blends the overlap between the old
  chunk's remaining predictions and the new chunk (aligned to the step its observation was taken
  at) with a linear ramp from old to new.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from serve import wire
from vla.types import EmbodimentSpec, InvalidObservationError, Observation, Policy, PolicyMetadata

_RETRY_STATUS = (502, 503, 504)


class RemotePolicyError(RuntimeError):
    """The server refused the request (4xx other than 422) or kept failing after retries."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ActResult:
    actions: np.ndarray  # float32[H, A], robot units
    embodiment: str
    seed: int
    timing: dict[str, float]  # server side: queue_ms, model_ms, server_ms, batch_size
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
    ):
        import httpx

        if fmt not in ("msgpack", "json"):
            raise ValueError(f"fmt must be 'msgpack' or 'json', got {fmt!r}")
        self.url = url.rstrip("/")
        self.fmt = fmt
        self.embodiment = embodiment
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=max_parallel, max_keepalive_connections=max_parallel)
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), limits=limits
        )
        self._httpx = httpx
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="remote-policy")
        self._metadata: PolicyMetadata | None = None

    # -- Policy protocol ---------------------------------------------------------------------
    @property
    def metadata(self) -> PolicyMetadata:
        if self._metadata is None:
            d = self._request("GET", "/v1/metadata").json()
            embs = {k: EmbodimentSpec.from_dict(v) for k, v in d["embodiments"].items()}
            self._metadata = PolicyMetadata(embs, d["default_embodiment"], int(d["action_horizon"]), d.get("model", ""), d.get("extra", {}))
        return self._metadata

    def predict(
        self, observations: list[Observation], *, embodiment: str | None = None, seed: int | Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """One chunk per observation; several observations go out concurrently (the server batches them)."""
        seeds = [seed] * len(observations) if seed is None or isinstance(seed, (int, np.integer)) else list(seed)
        if len(seeds) != len(observations):
            raise ValueError(f"predict: got {len(seeds)} seeds for {len(observations)} observations")
        if len(observations) == 1:
            return [self.act(observations[0], embodiment=embodiment, seed=seeds[0]).actions]
        futs = [self._pool.submit(self.act, o, embodiment=embodiment, seed=s) for o, s in zip(observations, seeds)]
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
    def act(self, observation: Observation, *, embodiment: str | None = None, seed: int | None = None) -> ActResult:
        controls = {"embodiment": embodiment or self.embodiment, "seed": None if seed is None else int(seed)}
        if self.fmt == "msgpack":
            body = wire.observation_to_msgpack(observation, **controls)
            ctype = wire.MSGPACK
        else:
            import json

            body = json.dumps(wire.observation_to_json(observation, **controls), separators=(",", ":")).encode()
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
        return ActResult(actions, d["embodiment"], int(d["seed"]), d.get("timing", {}), rtt, len(body), len(resp.content))

    def _request(self, method: str, path: str, **kw):
        err: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self._http.request(method, path, **kw)
            except self._httpx.TransportError as e:  # connect error, timeout, dropped connection
                err = e
                continue
            if resp.status_code in _RETRY_STATUS:
                err = RemotePolicyError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code)
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
        raise RemotePolicyError(f"{method} {self.url}{path}: failed after {self.retries + 1} attempts: {type(err).__name__}: {err}") from err

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()

    def __enter__(self) -> "RemotePolicy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _json_or_text(resp) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]


# -- action-chunk brokers -------------------------------------------------------------------------
def _execute_horizon(policy: Policy, embodiment: str | None, execute_horizon: int | None) -> int:
    if execute_horizon is not None:
        return execute_horizon
    meta = policy.metadata
    spec = meta.embodiments[embodiment or meta.default_embodiment]
    return min(spec.execute_horizon, meta.action_horizon)


class ChunkBroker:
    """``act(obs) -> float32[A]`` per control step; queries only when the executed chunk runs out."""

    def __init__(self, policy: Policy, *, execute_horizon: int | None = None, embodiment: str | None = None, seed: int | None = None):
        self.policy = policy
        self.embodiment = embodiment
        self.seed = seed
        self.execute_horizon = _execute_horizon(policy, embodiment, execute_horizon)
        self.queries = 0
        self.reset()

    def reset(self) -> None:
        self._chunk: np.ndarray | None = None
        self._i = 0

    def act(self, obs: Observation) -> np.ndarray:
        if self._chunk is None or self._i >= min(self.execute_horizon, len(self._chunk)):
            self._chunk = self.policy.predict([obs], embodiment=self.embodiment, seed=self.seed)[0]
            self._i = 0
            self.queries += 1
        action = self._chunk[self._i]
        self._i += 1
        return action


class BlendingChunkBroker:
    """Asynchronous chunking: prefetch the next chunk, then blend it into the current one.

    Steps are counted in control ticks.  A query started at tick ``tq`` returns a chunk whose row
    ``i`` is meant for tick ``tq + i``; when it arrives at tick ``ta`` its rows from ``ta - tq`` on
    replace the schedule, the first ``blend_steps`` of them (where the old chunk still has
    predictions) ramp linearly from the old values to the new ones.  If the executable part of the
    old chunk runs out before the new one arrives, ``act`` waits for it (counted in ``stalls``).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        execute_horizon: int | None = None,
        prefetch_steps: int = 3,
        blend_steps: int | None = None,
        embodiment: str | None = None,
        seed: int | None = None,
    ):
        self.policy = policy
        self.embodiment = embodiment
        self.seed = seed
        self.execute_horizon = _execute_horizon(policy, embodiment, execute_horizon)
        if not 0 <= prefetch_steps < self.execute_horizon:
            raise ValueError(f"prefetch_steps must be in [0, execute_horizon={self.execute_horizon}), got {prefetch_steps}")
        self.prefetch_steps = prefetch_steps
        self.blend_steps = blend_steps
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-prefetch")
        self.queries = 0
        self.stalls = 0
        self.reset()

    def reset(self) -> None:
        self._t = 0  # current control tick
        self._sched: np.ndarray | None = None  # actions for ticks [_t0, _t0 + len)
        self._t0 = 0
        self._end = 0  # first tick not covered by an executable chunk
        self._pending: tuple[int, concurrent.futures.Future] | None = None

    def _query(self, obs: Observation) -> np.ndarray:
        return self.policy.predict([obs], embodiment=self.embodiment, seed=self.seed)[0]

    def _merge(self, tq: int, chunk: np.ndarray) -> None:
        t = self._t
        new = np.asarray(chunk, np.float32)[t - tq :]
        if self._sched is not None:
            old = self._sched[t - self._t0 :]
            overlap = min(len(old), len(new), self.blend_steps if self.blend_steps is not None else len(new))
            if overlap > 0:
                w = (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1))[:, None]
                new = new.copy()
                new[:overlap] = (1 - w) * old[:overlap] + w * new[:overlap]
        self._sched, self._t0 = new, t
        self._end = tq + min(self.execute_horizon, len(chunk))

    def act(self, obs: Observation) -> np.ndarray:
        t = self._t
        if self._pending is not None and (self._pending[1].done() or t >= self._end):
            tq, fut = self._pending
            if not fut.done():
                self.stalls += 1
            self._pending = None
            self._merge(tq, fut.result())
        if self._sched is None or t >= self._end:  # nothing executable: query synchronously
            self.queries += 1
            self._merge(t, self._query(obs))
        if self._pending is None and self._end - t <= self.prefetch_steps:
            self.queries += 1
            self._pending = (t, self._pool.submit(self._query, obs))
        action = self._sched[t - self._t0]
        self._t += 1
        return action

    def close(self) -> None:
        self._pool.shutdown(wait=True)
