"""Schemathesis fuzzing of the OpenAPI schema against a live loopback server: never a 5xx."""

from __future__ import annotations

import json

import httpx
import msgpack
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from serve.app import create_app
from serve.server import running_server
from serve.toy_policy import ToyPolicy, toy_embodiments, toy_observation
from serve.wire import observation_to_json

KEY = "fuzz-key"


@schemathesis.serializer("application/msgpack")
def _to_msgpack(ctx, value):
    import msgpack

    def fit(v):  # msgpack cannot carry ints beyond 64 bits: send those as floats
        if isinstance(v, dict):
            return {k: fit(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fit(x) for x in v]
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64:
            return float(v)
        return v

    return value if isinstance(value, bytes) else msgpack.packb(fit(value), use_bin_type=True)


SCHEMA = schemathesis.openapi.from_dict(create_app(ToyPolicy()).openapi())


@pytest.fixture(scope="module")
def server():
    with running_server(ToyPolicy(), max_wait_ms=0.0, api_key=KEY, max_body_bytes=256 * 1024) as srv:
        yield srv


@pytest.fixture(scope="module")
def health(server):
    """One client for the per-case liveness check (a new httpx client per case costs ~30 ms of TLS setup)."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def test_schema_describes_the_api():
    paths = SCHEMA.raw_schema["paths"]
    assert {"/v1/act", "/v1/metadata", "/healthz"} <= set(paths)
    body = paths["/v1/act"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/msgpack"} <= set(body)
    assert {"400", "401", "413", "422"} <= set(paths["/v1/act"]["post"]["responses"])


@SCHEMA.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_fuzz_no_server_error(case, server, health):
    """Schema-driven bodies (JSON and msgpack) with a valid key: 2xx/4xx only, the server stays up."""
    response = case.call(base_url=server.url, headers={"Authorization": f"Api-Key {KEY}"}, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500
    assert health.get("/healthz").status_code == 200


def _prefix_values():
    """Real-time chunking fields of every kind: good and bad shapes, dtypes, numbers out of range."""
    num = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63 - 1), st.booleans())
    row = st.lists(st.one_of(num, st.text(max_size=3), st.none()), max_size=9)
    prev = st.one_of(st.none(), st.lists(row, max_size=10), st.lists(st.lists(num, min_size=7, max_size=7),
                                                                      max_size=10), num, st.text(max_size=4))
    delay = st.one_of(st.none(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.booleans(), st.text(max_size=3))
    return st.tuples(prev, delay, st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(values=_prefix_values())
def test_fuzz_prefix_fields_get_200_or_422_naming_them(server, health, values):
    """prev_actions / delay_steps of any shape and type (JSON and msgpack): 200, or 422 naming one of them."""
    prev, delay, as_msgpack = values
    body = observation_to_json(toy_observation(toy_embodiments()[0], np.random.default_rng(0), 16))
    body.update({k: v for k, v in (("prev_actions", prev), ("delay_steps", delay)) if v is not None})
    if as_msgpack:
        content, ctype = msgpack.packb(body, use_bin_type=True), "application/msgpack"
    else:
        content, ctype = json.dumps(body).encode(), "application/json"
    r = health.post("/v1/act", content=content,
                   headers={"Content-Type": ctype, "Authorization": f"Api-Key {KEY}", "Accept": "application/json"})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["field"] in ("prev_actions", "delay_steps"), r.text
