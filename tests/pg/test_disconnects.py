"""Connections killed under the pool (a failover, a restarted database, an operator's
pg_terminate_backend): an idle one is noticed by its ping and replaced before use; one in
steady use costs at most its one request a 503 problem, never a 500, and the next
request is served."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from stepup.services.runtime import Runtime
from stepup.store import db as store_db
from tests.support import instances

_tries = iter(range(10**6))


def _login() -> dict[str, str]:
    """A failing login under a new e-mail each time: no per-e-mail throttle comes in."""
    return {"email": f"nobody{next(_tries)}@example.com", "password": "not-the-password-1"}


async def _kill_the_pool(rt: Runtime) -> int:
    """Terminate every other connection to the test database; how many."""
    url = rt.settings.effective_database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    return int(killed)


async def _warm(client: httpx.AsyncClient) -> None:
    """Every worker has served, so each holds one pooled connection (sequential calls)."""
    for _ in range(2 * instances.worker_count()):
        assert (await client.post("/api/v1/login", json=_login())).status_code == 401


async def test_an_idle_connection_that_died_is_replaced_before_use(
        client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "IDLE_PING_SECONDS", 0.0)  # every connection is "idle"
    await _warm(client)
    assert await _kill_the_pool(runtime) >= 1
    statuses = [(await client.post("/api/v1/login", json=_login())).status_code
                for _ in range(3 * instances.worker_count())]
    assert set(statuses) == {401}


async def test_a_connection_that_died_in_steady_use_costs_one_503_not_a_500(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await _warm(client)
    assert await _kill_the_pool(runtime) >= 1
    workers = instances.worker_count()
    answers = [await client.post("/api/v1/login", json=_login()) for _ in range(2 * workers)]
    # Each worker's one pooled connection is dead: the first request each worker takes
    # fails, the connection leaves the pool, and the next request gets a new one.
    assert [r.status_code for r in answers] == [503] * workers + [401] * workers
    assert answers[0].json()["code"] == "service_unavailable"
    assert "Retry-After" in answers[0].headers
