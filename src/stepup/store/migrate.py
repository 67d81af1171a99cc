"""Schema migrations (Alembic) run from code: on ``serve`` for the embedded default,
by ``stepup migrate`` in production, and by the test fixtures."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine) -> None:
    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            await conn.run_sync(run)
        return
    # SQLite rebuilds a table to alter it; with foreign keys on, dropping the old table
    # would cascade to every row referencing it. The pragma only changes outside a
    # transaction, so it is set on the raw connection before the migration begins, the
    # references are checked before its commit, and it is set back after.
    async with engine.connect() as conn:
        await conn.run_sync(_sqlite_foreign_keys, False)
        try:
            async with conn.begin():
                await conn.run_sync(run)
                await conn.run_sync(_sqlite_check_references)
        finally:
            await conn.run_sync(_sqlite_foreign_keys, True)


def _sqlite_foreign_keys(conn: Connection, on: bool) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _sqlite_check_references(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows referencing nothing: {broken[:5]}")


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


def missing_file(url: str) -> str | None:
    """An SQLite database whose file does not exist (opening it would create it)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return f"there is no database at {path}"
    return None


async def schema_problem(url: str) -> str | None:
    """Why a command cannot use the database at ``url`` yet (unreachable, schema
    missing or behind), or None when it is current. Check ``missing_file`` first:
    opening an SQLite file that is not there creates it."""
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        current = await current_revision(engine)
    except Exception as exc:  # unreachable, refused, wrong password: one line, no trace
        return f"the database cannot be reached ({type(exc).__name__})"
    finally:
        await engine.dispose()
    if current is None:
        return "the database has no StepUp schema"
    if current != head_revision():
        return f"the database schema is at revision {current}, not {head_revision()}"
    return None
