"""An unreachable database: /readyz says so and requests answer 503 problems quickly,
never hang and never 500."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import InternalError

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.web.app import create_app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_postgresql_answers_503(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"postgresql+asyncpg://stepup:x@127.0.0.1:{_closed_port()}/stepup"
    settings = Settings(data_dir=tmp_path, database_url=url)
    rt = Runtime.build(settings, clock)
    app = create_app(settings, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/healthz")).status_code == 200  # alive, but not ready
            started = time.monotonic()
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["code"] == "service_unavailable"
            r = await c.post("/api/v1/login", json={"email": "a@example.com",
                                                    "password": "x" * 12})
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "service_unavailable" and "Retry-After" in r.headers
            assert time.monotonic() - started < 15
    finally:
        await rt.engine.dispose()


async def test_an_error_that_cost_its_connection_is_a_503_any_other_a_500(app: FastAPI
                                                                        ) -> None:
    # What asyncpg raises when the server terminated a connection mid-protocol: not an
    # OperationalError, but the pool invalidated the connection (store/db.py).
    def broken(invalidated: bool) -> None:
        raise InternalError("SELECT 1", {}, Exception("protocol state broken"),
                            connection_invalidated=invalidated)

    app.add_api_route("/test/lost", lambda: broken(True))
    app.add_api_route("/test/bug", lambda: broken(False))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        lost, bug = await c.get("/test/lost"), await c.get("/test/bug")
    assert lost.status_code == 503 and lost.json()["code"] == "service_unavailable"
    assert "Retry-After" in lost.headers
    assert bug.status_code == 500 and bug.json()["code"] == "internal_error"
