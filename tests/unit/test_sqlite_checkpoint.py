"""SQLite's log is copied back into the database off the writers' turn
(store/sqlite_checkpoint.py): StepUp's connections leave checkpoints to their
checkpointer, which copies beside a writer, takes the turn only to let the log start
again, and so keeps the log's file from growing while writes go on."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from stepup.store import sqlite_checkpoint
from stepup.store.db import make_engine, make_sessionmaker
from stepup.store.sqlite_checkpoint import Checkpointer
from tests.unit.test_sqlite_writer_turn import Workers, workers  # noqa: F401  (fixture)


async def test_stepup_connections_leave_checkpoints_to_their_checkpointer(
        workers: Workers) -> None:  # noqa: F811
    async with workers.one() as db:
        assert (await db.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0


async def test_the_log_restarts_while_writes_go_on(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checkpoint, "EVERY", 16)
    monkeypatch.setattr(sqlite_checkpoint, "RESTART_EVERY", 2)
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as db:
            await db.execute(text("CREATE TABLE t (n INTEGER, pad TEXT)"))
            await db.commit()
        for n in range(600):  # a page each: 2.4 MB of log without a checkpoint
            async with sessions() as db:
                await db.execute(text("INSERT INTO t VALUES (:n, :pad)"),
                                 {"n": n, "pad": "x" * 3000})
                await db.commit()
                await asyncio.sleep(0)
        log = os.path.getsize(f"{path}-wal")  # its largest so far: it never shrinks
    finally:
        await engine.dispose()
    assert log < 1_600_000  # a restart every ~32 commits: ~130 kB when the machine is idle
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*), sum(n) FROM t").fetchone() == (600, 179700)


async def test_a_checkpoint_copies_beside_a_writer_and_restarts_in_its_turn(
        workers: Workers) -> None:  # noqa: F811
    database = str(workers.turn).removesuffix("-turn")
    checkpointer = Checkpointer(database)
    try:
        async with workers.one() as holder:
            await holder.execute(text("INSERT INTO t VALUES (1)"))  # holds the turn
            await asyncio.wait_for(asyncio.to_thread(checkpointer._checkpoint, False), 5)
            restarting = asyncio.ensure_future(
                asyncio.to_thread(checkpointer._checkpoint, True))
            await asyncio.sleep(0.3)
            assert not restarting.done()  # the second pass waits for the turn
            await holder.commit()
        await asyncio.wait_for(restarting, 5)
    finally:
        checkpointer.close()
