"""Service endpoints, the published OpenAPI document and the security headers."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import auth, problem, session_for, sign_up


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


async def test_openapi_publishes_the_problem_schema(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    problem_schema = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem_schema["properties"])
    assert set(problem_schema["required"]) >= {"type", "title", "status", "detail", "code"}
    for path in ("/api/v1/accounts", "/api/v1/login", "/api/v1/login/verify", "/api/v1/me",
                 "/api/v1/me/methods", "/api/v1/me/methods/{method_type}/enrollment",
                 "/api/v1/me/methods/backup_codes/regenerate", "/api/v1/logout"):
        assert path in doc["paths"], path


def assert_secure_headers(r: httpx.Response) -> None:
    csp = r.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, r.headers
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert "no-store" in r.headers.get("cache-control", "")


@pytest.mark.parametrize("kind", ["ok", "created", "problem", "not_found", "too_large",
                                  "validation"])
async def test_security_headers_on_api_answers(client: httpx.AsyncClient, kind: str) -> None:
    if kind == "created":
        r = await client.post("/api/v1/accounts", json={
            "email": "jane@example.com", "password": "violet-harbour-7-lanterns",
            "pin": "417293"})
        assert r.status_code == 201
    elif kind == "ok":
        await sign_up(client)
        r = await client.get("/api/v1/me", headers=auth(await session_for(client)))
        assert r.status_code == 200
    elif kind == "problem":
        r = await client.get("/api/v1/me")
        problem(r, 401, "not_authenticated")
    elif kind == "not_found":
        r = await client.get("/api/v1/nope")
        problem(r, 404, "not_found")
    elif kind == "too_large":
        r = await client.post("/api/v1/accounts", content=b"x" * (70 * 1024),
                              headers={"content-type": "application/json"})
        problem(r, 413, "payload_too_large")
    else:
        r = await client.post("/api/v1/accounts", json={})
        problem(r, 422, "validation_error")
    assert_secure_headers(r)
