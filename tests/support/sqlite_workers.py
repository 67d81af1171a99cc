"""Two SQLite engines on one file, as two worker processes have them (one connection
each), with a table ``t (n INTEGER)`` to write to: for the tests of the workers' write
turn and of read-first transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store.db import make_engine, make_sessionmaker


@asynccontextmanager
async def two_engines(path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """The two engines on the database file ``path``, made with its table; disposed at
    the end."""
    url = f"sqlite+aiosqlite:///{path}"
    first, second = make_engine(url), make_engine(url)
    try:
        async with make_sessionmaker(first)() as db:
            await db.execute(text("CREATE TABLE t (n INTEGER)"))
            await db.commit()
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()
