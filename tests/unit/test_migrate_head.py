"""``migrate.HEAD`` and the stored revision, read without Alembic: what ``serve`` and
every command use to tell a current schema (store/migrate.py)."""

from __future__ import annotations

from pathlib import Path

from stepup.store import migrate
from stepup.store.db import make_engine


def test_head_is_the_newest_migration_script() -> None:
    # A new migration must move HEAD too, or a process would take an old schema as current.
    assert migrate.scripts_head() == migrate.HEAD


async def test_the_stored_revision_is_read_as_alembic_reads_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        assert await migrate.current_revision(engine) is None  # no schema yet
        assert not await migrate.is_current(engine)
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.HEAD
        assert await migrate.is_current(engine)
        await migrate.upgrade(engine)  # current already: nothing runs, nothing breaks
        assert await migrate.current_revision(engine) == migrate.HEAD
    finally:
        await engine.dispose()
