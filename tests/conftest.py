"""Shared fixtures: a real database (SQLite by default, PostgreSQL with
``STEPUP_TEST_DB=postgres`` or an explicit ``STEPUP_TEST_DATABASE_URL``), an injected
clock, and the app reached through httpx — as one worker, or as several with
``STEPUP_TEST_WORKERS=N`` (tests/support/instances.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import Base
from stepup.web.app import create_app
from tests.support import instances


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("STEPUP_TEST_DATABASE_URL")
    if explicit:
        yield explicit
    elif os.environ.get("STEPUP_TEST_DB") == "postgres":
        from tests.support.pg import ThrowawayPostgres

        with ThrowawayPostgres() as pg:
            yield pg.dsn_async
    else:
        path = tmp_path_factory.mktemp("db") / "stepup.db"
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def _schema(database_url: str) -> str:
    async def go() -> None:
        engine = make_engine(database_url)
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(go())
    return database_url


async def _wipe(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        # Only tables the migrations created: a model whose migration is still being
        # written must not break every other test.
        existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == "apps":
                # The built-in app is made by the migration, as on a new installation.
                await conn.execute(text("DELETE FROM apps WHERE id <> 'portal'"))
            elif table.name in existing:
                await conn.execute(text(f"DELETE FROM {table.name}"))
    await engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    # A real-looking instant, so TOTP codes made by pyotp for it match.
    return FrozenClock(datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(_schema: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=_schema, issuer="StepUp Test",
                    public_url="http://testserver")


@pytest.fixture
async def runtime(settings: Settings, clock: FrozenClock) -> AsyncIterator[Runtime]:
    await _wipe(settings.effective_database_url)
    rt = Runtime.build(settings, clock)
    yield rt
    await rt.engine.dispose()


@pytest.fixture
def app(settings: Settings, runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(settings, runtime=runtime, migrate_on_start=False)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app through httpx; over several instances with ``STEPUP_TEST_WORKERS``."""
    async with instances.http_client(runtime) as c:
        yield c
