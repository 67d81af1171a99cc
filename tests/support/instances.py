"""The app as several workers, in the suite's own process.

With ``STEPUP_TEST_WORKERS=N`` (default 1) every test client deals its requests
round-robin over N app instances on the one test database. Each instance has its own
runtime, engine, connection pool, key ring and delivery — everything a worker process
holds — and shares only the clock the tests move. A test that passes so shows that no
request depends on which worker answered the one before: sessions, login flows,
challenges, rate-limit counters and locks live in the database. (Process-level state is
covered by the race tests, which run real ``stepup serve --workers 4`` processes.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator

import httpx

from stepup.services.runtime import Runtime
from stepup.web.app import create_app

CLIENT = ("203.0.113.7", 50000)


def worker_count() -> int:
    return max(1, int(os.environ.get("STEPUP_TEST_WORKERS", "1")))


class RoundRobin(httpx.AsyncBaseTransport):
    """One request to each transport in turn."""

    def __init__(self, transports: list[httpx.AsyncBaseTransport]) -> None:
        self.transports = transports
        self._turn = itertools.cycle(transports)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()


@contextlib.asynccontextmanager
async def workers(runtime: Runtime, *, client: tuple[str, int] = CLIENT,
                  raise_app_exceptions: bool = True, count: int | None = None
                  ) -> AsyncIterator[RoundRobin]:
    """A transport over ``count`` (else ``worker_count()``) instances; the first serves
    with ``runtime`` (so a test may look at its state), the others are built from its
    settings."""
    n = count or worker_count()
    extra = [Runtime.build(runtime.settings, runtime.clock) for _ in range(n - 1)]
    try:
        yield RoundRobin([
            httpx.ASGITransport(app=create_app(rt.settings, runtime=rt, migrate_on_start=False),
                                client=client, raise_app_exceptions=raise_app_exceptions)
            for rt in [runtime, *extra]])
    finally:
        for rt in extra:
            await rt.engine.dispose()


@contextlib.asynccontextmanager
async def http_client(runtime: Runtime, *, client: tuple[str, int] = CLIENT,
                      base_url: str = "http://testserver", count: int | None = None
                      ) -> AsyncIterator[httpx.AsyncClient]:
    async with workers(runtime, client=client, count=count) as transport, \
            httpx.AsyncClient(transport=transport, base_url=base_url) as c:
        yield c
