"""Schemathesis fuzzing of the OpenAPI schema against a live loopback server: never a 5xx."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from serve.app import create_app
from serve.server import running_server
from serve.toy_policy import ToyPolicy

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
