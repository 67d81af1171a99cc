"""Read-first SQLite transactions (store/db.py, ``make_read_first_sessionmaker``): they
read without the write lock, take it at their first write (waiting for the workers'
turn and another process's lock as any writer does), and write on top of what other
workers committed meanwhile instead of failing on their old snapshot."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stepup.store import sqlite_checkpoint
from stepup.store.db import (
    make_read_first_sessionmaker,
    make_sessionmaker,
    overtaken,
    write_turn,
)
from stepup.store.queries import core
from tests.support.sqlite_workers import two_engines

Sessions = async_sessionmaker[AsyncSession]
T = Table("t", MetaData(), Column("n", Integer))
ADD = insert(T)


@dataclass
class Workers:
    """Two engines on one file, as two worker processes have them: the first one's
    read-first sessions, and the second one's ordinary (write) sessions."""

    path: Path
    first: AsyncEngine
    reader: Sessions
    other: Sessions


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    path = tmp_path / "shared.db"
    async with two_engines(path) as (first, second):
        yield Workers(path, first, make_read_first_sessionmaker(first),
                      make_sessionmaker(second))


def _turn_is_free(workers: Workers) -> bool:
    fd = os.open(f"{workers.path}-turn", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


async def _rows(sessions: Sessions) -> list[int]:
    async with sessions() as db:
        return [n for (n,) in await db.execute(text("SELECT n FROM t ORDER BY rowid"))]


async def _other_writes(workers: Workers, n: int) -> None:
    async with workers.other() as db:
        await db.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        await db.commit()


async def test_reads_take_no_lock_and_the_first_write_lands_on_what_others_committed(
        workers: Workers) -> None:
    async with workers.reader() as db:
        assert (await db.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
        assert _turn_is_free(workers)
        # The other worker writes while this transaction is open, without waiting.
        await asyncio.wait_for(_other_writes(workers, 2), 2)
        # A deferred transaction would now fail to write (its snapshot is older than
        # the last commit: SQLITE_BUSY_SNAPSHOT); this one takes the lock and writes.
        await db.execute(text("INSERT INTO t VALUES (1)"))
        assert not _turn_is_free(workers)  # the write holds the turn until the end
        assert overtaken(db)  # what it read before may have changed since
        # From the first write on, what it reads is the database as it is now.
        assert [n for (n,) in await db.execute(text("SELECT n FROM t ORDER BY rowid"))] \
            == [2, 1]
        await db.commit()
    assert _turn_is_free(workers)
    assert await _rows(workers.other) == [2, 1]


async def test_a_first_write_outside_the_greenlet_waits_for_the_turn(
        workers: Workers) -> None:
    """A Core statement runs straight on the driver from the coroutine
    (store/driver.py): when the turn is another worker's, it waits for it with the event
    loop free instead of writing past it."""
    async with workers.reader() as db:
        await core(db, T.select(), {})  # the transaction is open and has read
        async with workers.other() as holder:
            await holder.execute(text("INSERT INTO t VALUES (2)"))  # holds the turn
            writing = asyncio.create_task(core(db, ADD, {"n": 1}))
            for _ in range(10):
                await asyncio.sleep(0.002)
            assert not writing.done()
            await holder.commit()
        await asyncio.wait_for(writing, 5)
        assert overtaken(db)
        await db.commit()
    assert await _rows(workers.other) == [2, 1]


async def test_a_first_write_waits_for_another_process_outside_the_turns(
        workers: Workers) -> None:
    """A process that writes without taking turns (a CLI command, a migration) holds
    SQLite's own lock: the read-first transaction waits for it, then writes."""
    outsider = sqlite3.connect(workers.path, isolation_level=None)
    try:
        async with workers.reader() as db:
            await core(db, T.select(), {})
            outsider.execute("BEGIN IMMEDIATE")
            outsider.execute("INSERT INTO t VALUES (2)")
            writing = asyncio.create_task(core(db, ADD, {"n": 1}))
            for _ in range(10):
                await asyncio.sleep(0.002)
            assert not writing.done()
            outsider.execute("COMMIT")
            await asyncio.wait_for(writing, 5)
            assert overtaken(db)
            await db.commit()
    finally:
        outsider.close()
    assert await _rows(workers.other) == [2, 1]
    assert _turn_is_free(workers)


async def test_a_read_that_stands_for_a_lock_takes_the_write_lock_first(
        workers: Workers) -> None:
    """``write_turn``: what PostgreSQL's ``SELECT … FOR UPDATE`` does, for the chain
    heads' reads (store/audit.py): once it returns, no other worker writes until this
    transaction ends, so what it reads next stays true until it commits."""
    async with workers.reader() as db:
        await db.execute(text("SELECT count(*) FROM t"))
        await write_turn(db)
        assert not _turn_is_free(workers)
        blocked = asyncio.create_task(_other_writes(workers, 2))
        await asyncio.sleep(0.02)
        assert not blocked.done()
        count = (await db.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await db.execute(text("INSERT INTO t VALUES (:n)"), {"n": count + 1})
        await db.commit()
    await asyncio.wait_for(blocked, 5)
    assert await _rows(workers.other) == [1, 2]


async def test_a_read_first_transaction_that_only_read_leaves_no_lock(
        workers: Workers) -> None:
    async with workers.reader() as db:
        await db.execute(text("SELECT count(*) FROM t"))
        await db.commit()
    async with workers.reader() as db:
        await db.execute(text("SELECT count(*) FROM t"))
        await db.rollback()
    assert _turn_is_free(workers)
    await asyncio.wait_for(_other_writes(workers, 1), 2)
    # An ordinary session is never overtaken: it holds the write lock from BEGIN.
    async with make_sessionmaker(workers.first)() as db:
        await db.execute(text("INSERT INTO t VALUES (2)"))
        assert not overtaken(db)


async def test_a_write_that_nobody_overtook_says_so(workers: Workers) -> None:
    """Another worker's commit before the reads, or this worker's own, does not count:
    only one between the reads and the write lock may have changed what was read."""
    await _other_writes(workers, 1)
    async with workers.reader() as db:
        await core(db, T.select(), {})
        await core(db, ADD, {"n": 2})  # outside the greenlet, the turn free
        assert not overtaken(db)
        await db.commit()
    async with workers.reader() as db:
        await db.execute(text("SELECT count(*) FROM t"))
        await db.execute(text("INSERT INTO t VALUES (3)"))  # through the engine
        assert not overtaken(db)
        await db.commit()
    async with workers.reader() as db:
        await core(db, T.select(), {})
        await _other_writes(workers, 4)
        await core(db, ADD, {"n": 5})
        assert overtaken(db)
        await db.commit()
    assert await _rows(workers.other) == [1, 2, 3, 4, 5]


async def test_a_write_waiting_for_the_turn_holds_no_snapshot(
        workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint thread's RESTART holds the turn while it waits for the readers
    still on the log (store/sqlite_checkpoint.py). A read-first transaction that has
    read and now waits for the turn lets its snapshot go first: the RESTART goes
    through, and the write follows it, instead of the two waiting for each other until
    RESTART_WAIT_MS runs out (the RESTART then busy, every worker's writes held)."""
    monkeypatch.setattr(sqlite_checkpoint, "RESTART_WAIT_MS", 3_000)
    for n in range(20):  # a log for the RESTART to start again
        await _other_writes(workers, n)
    checkpointer = sqlite_checkpoint.Checkpointer(str(workers.path), restart_pages=10)
    try:
        async with workers.reader() as db:
            await core(db, T.select(), {})  # its snapshot: the log's last frame
            restarting = asyncio.create_task(checkpointer.round())
            for _ in range(2_000):  # the thread takes the turn, then RESTARTs
                if not _turn_is_free(workers):
                    break
                await asyncio.sleep(0.001)
            assert not _turn_is_free(workers)  # the thread holds it, waiting for this reader
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(core(db, ADD, {"n": 100}), 5)
            waited = asyncio.get_running_loop().time() - started
            await db.commit()
        await asyncio.wait_for(restarting, 5)
    finally:
        checkpointer.close()
    assert checkpointer.restarts == 1  # the whole log copied, the next write at its start
    assert waited < 1.0  # the RESTART's copy, not its 3-s wait for readers
    assert (await _rows(workers.other))[-1] == 100
