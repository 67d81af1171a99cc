"""A SQLite worker waiting for another process's write lock keeps serving: it asks for the
lock again and again with its event loop free, instead of sleeping in SQLite's busy
handler with the loop stopped (store/sqlite_connection.py, ``_wait_for_writer``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from stepup.store import sqlite_connection
from stepup.store.db import make_engine, make_sessionmaker


async def test_a_worker_waiting_for_the_write_lock_keeps_its_loop_running(
        tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as db:  # WAL on, the table made
        await db.execute(text("CREATE TABLE t (n INTEGER)"))
        await db.commit()

    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # another worker: its own connection, on another thread
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
        held.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    writer = threading.Thread(target=other_process)
    writer.start()
    held.wait(5)
    ticks = 0

    async def other_requests() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1
            if ticks == 10:  # the loop ran meanwhile: let the other process commit
                release.set()

    ticker = asyncio.create_task(other_requests())
    started = time.monotonic()
    try:
        async with sessions() as db:
            await db.execute(text("INSERT INTO t VALUES (2)"))  # waits for the lock
            await db.commit()
    finally:
        release.set()
        ticker.cancel()
        writer.join(5)
        await engine.dispose()
    # With the busy handler the loop stood still until the other writer gave up its
    # lock, which it did only after ten turns of the loop: it would never have.
    assert ticks >= 10
    assert time.monotonic() - started < 5
    check = sqlite3.connect(path)
    assert sorted(n for (n,) in check.execute("SELECT n FROM t")) == [1, 2]
    check.close()


async def test_a_write_lock_held_too_long_is_a_database_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_connection, "WRITER_WAIT_SECONDS", 0.05)
    path = tmp_path / "shared.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    async with sessions() as db:
        await db.execute(text("CREATE TABLE t (n INTEGER)"))
        await db.commit()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        async with sessions() as db:
            with pytest.raises(OperationalError, match="locked"):
                await db.execute(text("INSERT INTO t VALUES (2)"))
        assert time.monotonic() - started < 2
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with sessions() as db:  # the connection is fine afterwards
        await db.execute(text("INSERT INTO t VALUES (3)"))
        await db.commit()
    await engine.dispose()
