"""No 500 the client cannot read: out-of-range integers are 422, and an unexpected error
is a 500 problem document after which the same connection serves the next request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI

from stepup.services.runtime import Runtime
from stepup.web.app import create_app
from tests.api.helpers import auth, problem, session_for, sign_up
from tests.support.server import free_port

HUGE = "99999999999999999999"


@pytest.mark.parametrize("query", [f"before={HUGE}", f"before=-{HUGE}", "before=0",
                                   f"before={2 ** 63}", f"limit={HUGE}", "limit=0",
                                   "limit=201"])
async def test_out_of_range_integers_are_422(client: httpx.AsyncClient, query: str) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.get(f"/api/v1/me/events?{query}", headers=auth(token))
    body = problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] in ("before", "limit")


async def test_the_largest_id_is_answered(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.get(f"/api/v1/me/events?before={2 ** 63 - 1}", headers=auth(token))
    assert r.status_code == 200, r.text


def failing_app(runtime: Runtime) -> FastAPI:
    """The real app plus a test-only route that fails as no code path should."""
    app = create_app(runtime.settings, runtime=runtime, migrate_on_start=False)
    broken = APIRouter()

    @broken.get("/api/v1/test-only/boom")
    async def boom() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    app.include_router(broken)
    return app


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` under a real uvicorn (HTTP/1.1, keep-alive), as ``stepup serve`` runs it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="critical", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def local_port(r: httpx.Response) -> int:
    stream = r.extensions["network_stream"]
    return int(stream.get_extra_info("socket").getsockname()[1])


async def test_unexpected_error_is_a_problem_and_keeps_the_connection(
        runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    async with served(failing_app(runtime)) as base, \
            httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1)) as c:
        with caplog.at_level(logging.ERROR):
            r = await c.get("/api/v1/test-only/boom")
        body = problem(r, 500, "internal_error")
        assert "Traceback" not in r.text and "SQLite" not in r.text
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers.get("connection") != "close"
        assert body["retryable"] is False
        # Logged once, with its stack, for the operator.
        assert any(rec.exc_info and isinstance(rec.exc_info[1], OverflowError)
                   for rec in caplog.records)
        first = local_port(r)
        r2 = await c.get("/healthz")
        assert r2.status_code == 200
        assert local_port(r2) == first  # the same connection served the next request
        r3 = await c.get("/api/v1/test-only/boom")
        problem(r3, 500, "internal_error")
        assert local_port(r3) == first


async def test_asgi_messages_of_an_unexpected_error(runtime: Runtime) -> None:
    """Below the server: the app answers in full and returns, raising nothing."""
    app = failing_app(runtime)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/api/v1/test-only/boom",
             "raw_path": b"/api/v1/test-only/boom", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("203.0.113.7", 50000),
             "server": ("testserver", 80), "state": {}}
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 500
