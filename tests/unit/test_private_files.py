"""Data files are readable by the service's user alone: the data directory 0700, every
file in it 0600 (the SQLite database, its -wal and -shm, the development keys), whatever
umask the process started with; an existing directory or database that others could read
is tightened, with a warning."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import migrate


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common default, so the test sees what the runtime itself does."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def one_write(data_dir: Path, clock: FrozenClock) -> dict[str, int]:
    """A runtime on ``data_dir`` (the embedded default), its schema and one write; the
    modes of what the directory holds while the database is open."""
    rt = Runtime.build(Settings(data_dir=data_dir, issuer="StepUp Test",
                                public_url="http://testserver"), clock)
    try:
        await migrate.upgrade(rt.engine)
        async with rt.db() as db:
            await db.execute(text("UPDATE apps SET display_name = 'Mine' WHERE id = 'portal'"))
            await db.commit()
        return {p.name: mode(p) for p in data_dir.iterdir()}
    finally:
        await rt.engine.dispose()


async def test_a_new_data_directory_is_private(tmp_path: Path, clock: FrozenClock) -> None:
    data_dir = tmp_path / "srv" / "stepup"
    files = await one_write(data_dir, clock)
    assert mode(data_dir) == 0o700
    assert files == {"keys.json": 0o600, "stepup.db": 0o600, "stepup.db-wal": 0o600,
                     "stepup.db-shm": 0o600, "stepup.db-turn": 0o600}


async def test_a_loose_data_directory_is_tightened_with_a_warning(
        tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    await one_write(data_dir, clock)
    data_dir.chmod(0o755)
    for name in ("stepup.db", "keys.json"):
        (data_dir / name).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="stepup"):
        files = await one_write(data_dir, clock)
    assert mode(data_dir) == 0o700
    assert files == {"keys.json": 0o600, "stepup.db": 0o600, "stepup.db-wal": 0o600,
                     "stepup.db-shm": 0o600, "stepup.db-turn": 0o600}
    warned = [r.getMessage() for r in caplog.records if "readable by other users" in
              r.getMessage()]
    assert len(warned) == 3  # the directory, the keys and the database
