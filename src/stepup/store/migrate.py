"""Schema migrations (Alembic) run from code: on ``serve`` for the embedded default,
by ``stepup migrate`` in production, and by the test fixtures.

Some migrations move data the key ring must seal (0009 seals the destinations that
earlier versions stored in clear). Alembic has no keys of its own: each runtime hands its
``DestinationSeal`` over for its engine (``use_seal``), and ``upgrade`` passes it to the
migrations, so ``stepup migrate`` and ``stepup serve`` seal with the process's keys. A
migration that needs it and finds none refuses, leaving the database as it was.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store.db import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

    from stepup.domain.sealing import DestinationSeal

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions. Kept here so that telling a current schema
# (every `stepup serve`, every CLI command) needs neither Alembic nor the migration
# scripts in memory; tests/unit/test_migrate_head.py checks it against the scripts.
HEAD = "0016"
VERSION_TABLE = "alembic_version"
# The attribute of the Alembic config that carries the seal to the migrations.
SEAL = "destination_seal"
# Set by a migration that removed data in clear: SQLite then rebuilds the file.
SCRUB = "scrub"
_seals: weakref.WeakKeyDictionary[Engine, DestinationSeal] = weakref.WeakKeyDictionary()


def use_seal(engine: AsyncEngine, seal: DestinationSeal) -> None:
    """Migrations run on ``engine`` seal data with ``seal`` (the runtime's keys)."""
    _seals[engine.sync_engine] = seal


def alembic_config(url: str = "") -> Config:
    # Imported here: only a process that migrates needs Alembic (~10 MB with Mako).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head_revision() -> str:
    return HEAD


def scripts_head() -> str | None:
    """The head as Alembic reads it from the scripts (what ``HEAD`` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, seal: DestinationSeal | None = None) -> None:
    """Upgrade to the newest revision; ``seal`` (default: the one ``use_seal`` gave for
    this engine) seals what earlier versions kept in clear."""
    if await current_revision(engine) == HEAD:
        return  # nothing to run: Alembic would find the same and do nothing
    seal = seal or _seals.get(engine.sync_engine)
    done: dict[str, object] = {}

    def run(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        cfg.attributes[SEAL] = seal
        command.upgrade(cfg, "head")
        done.update(cfg.attributes)

    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            await conn.run_sync(run)
        return
    # SQLite rebuilds a table to alter it; with foreign keys on, dropping the old table
    # would cascade to every row referencing it. The pragma only changes outside a
    # transaction, so it is set on the raw connection before the migration begins, the
    # references are checked before its commit, and it is set back after. Content a
    # migration deletes or rewrites is overwritten with zeros (secure_delete); one that
    # removed data in clear (``SCRUB``) has the file rebuilt too, so no free page of
    # older deletions keeps it, and the write-ahead log that held it is emptied.
    async with engine.connect() as conn:
        await conn.run_sync(_sqlite_raw, "PRAGMA foreign_keys=OFF")
        await conn.run_sync(_sqlite_raw, "PRAGMA secure_delete=ON")
        try:
            async with conn.begin():
                await conn.run_sync(run)
                await conn.run_sync(_sqlite_check_references)
            if done.get(SCRUB):
                await conn.run_sync(_sqlite_raw, "VACUUM")
                await conn.run_sync(_sqlite_raw, "PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await conn.run_sync(_sqlite_raw, "PRAGMA secure_delete=OFF")
            await conn.run_sync(_sqlite_raw, "PRAGMA foreign_keys=ON")


def _sqlite_raw(conn: Connection, statement: str) -> None:
    """A statement that must run outside any transaction (pragmas, VACUUM)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(statement)
    cursor.close()


def _sqlite_check_references(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows referencing nothing: {broken[:5]}")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision stored in Alembic's version table (None: no StepUp schema), read as
    Alembic's ``MigrationContext`` reads it, without importing Alembic."""
    def read(conn: Connection) -> str | None:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(rows) > 1:
            raise RuntimeError(f"the database has several schema heads: {sorted(rows)}")
        return rows[0] if rows else None

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
