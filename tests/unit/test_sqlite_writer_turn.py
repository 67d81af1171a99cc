"""SQLite workers take turns to write (store/sqlite_turn.py): a worker whose turn is
taken waits with its event loop free and writes as soon as the other's transaction
ends; a wait that is cancelled or runs out never keeps the turn from the others."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stepup.store import sqlite_connection
from stepup.store.db import make_read_sessionmaker, make_sessionmaker
from tests.support.sqlite_workers import two_engines

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Workers:
    """Two engines on one file, what two worker processes have (one connection each):
    the first engine and each one's sessions; ``turn`` is the file of their turns."""

    first: AsyncEngine
    one: Sessions
    two: Sessions
    turn: Path


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    async with two_engines(tmp_path / "shared.db") as (first, second):
        yield Workers(first, make_sessionmaker(first), make_sessionmaker(second),
                      tmp_path / "shared.db-turn")


async def _rows(sessions: Sessions) -> list[int]:
    async with sessions() as db:
        return [n for (n,) in (await db.execute(text("SELECT n FROM t ORDER BY rowid")))]


async def _insert_two(workers: Workers) -> None:
    """The second worker's write: inserts 2 and commits."""
    async with workers.two() as db:
        await db.execute(text("INSERT INTO t VALUES (2)"))
        await db.commit()


async def test_a_worker_waits_for_the_turn_with_its_loop_free(workers: Workers) -> None:
    async with workers.one() as holder:
        await holder.execute(text("INSERT INTO t VALUES (1)"))  # holds the turn
        waiting = asyncio.create_task(_insert_two(workers))
        ticks = 0
        while ticks < 10:  # the loop runs the worker's other requests meanwhile
            await asyncio.sleep(0.002)
            ticks += 1
        assert not waiting.done()  # its turn has not come
        await holder.commit()  # the turn passes on
    await asyncio.wait_for(waiting, 5)
    assert await _rows(workers.one) == [1, 2]


async def test_the_turn_is_given_back_by_a_rollback_and_a_failed_transaction(
        workers: Workers) -> None:
    async with workers.one() as db:
        await db.execute(text("INSERT INTO t VALUES (1)"))
        await db.rollback()
    with pytest.raises(OperationalError):
        async with workers.one() as db:
            await db.execute(text("INSERT INTO nowhere VALUES (1)"))
    async with workers.two() as db:  # neither left the turn taken: this does not wait
        await asyncio.wait_for(db.execute(text("INSERT INTO t VALUES (2)")), 2)
        await db.commit()
    assert await _rows(workers.one) == [2]


async def test_a_cancelled_wait_does_not_keep_the_turn(workers: Workers) -> None:
    async with workers.one() as holder:
        await holder.execute(text("INSERT INTO t VALUES (1)"))

        async def gives_up() -> None:
            async with workers.two() as db:
                await db.execute(text("INSERT INTO t VALUES (2)"))
                await db.commit()

        waiting = asyncio.create_task(gives_up())
        await asyncio.sleep(0.05)
        waiting.cancel()  # the client went away while the worker waited
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await holder.commit()
    # The abandoned wait took the turn once it was free and gave it straight back:
    # both workers still write.
    for sessions, n in ((workers.one, 3), (workers.two, 4)):
        async with sessions() as db:
            await asyncio.wait_for(db.execute(text(f"INSERT INTO t VALUES ({n})")), 2)
            await db.commit()
    assert await _rows(workers.one) == [1, 3, 4]


async def test_a_turn_held_too_long_is_a_database_error(
        workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_connection, "WRITER_WAIT_SECONDS", 0.05)
    async with workers.one() as holder:
        await holder.execute(text("INSERT INTO t VALUES (1)"))
        started = time.monotonic()
        async with workers.two() as db:
            # Answered 503 by web/problems, as a write lock held too long is.
            with pytest.raises(OperationalError, match="locked"):
                await db.execute(text("INSERT INTO t VALUES (2)"))
        assert time.monotonic() - started < 2
        await holder.commit()
    async with workers.two() as db:  # the worker writes again once the turn is free
        await asyncio.wait_for(db.execute(text("INSERT INTO t VALUES (3)")), 2)
        await db.commit()
    assert await _rows(workers.one) == [1, 3]


def _turn_is_free(path: Path) -> bool:
    """Whether another process could take the turn now (its own open of the file)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # gives back what it took
    return True


async def test_a_write_transaction_holds_the_turn_until_it_ends(workers: Workers) -> None:
    assert _turn_is_free(workers.turn)
    async with workers.one() as db:
        await db.execute(text("SELECT 1"))  # a write transaction (BEGIN IMMEDIATE)
        assert not _turn_is_free(workers.turn)
        await db.commit()
        assert _turn_is_free(workers.turn)
    async with make_read_sessionmaker(workers.first)() as db:  # a read takes no turn
        await db.execute(text("SELECT n FROM t"))
        assert _turn_is_free(workers.turn)


def test_the_turn_file_is_private(workers: Workers) -> None:
    assert workers.turn.exists()
    assert workers.turn.stat().st_mode & 0o077 == 0


async def test_a_late_give_back_finds_the_turns_file_still_open(workers: Workers) -> None:
    """A connection closed while its cancelled wait is still queued for the turn keeps
    the turn's descriptor until that wait has taken the turn and given it back: a late
    call never meets the descriptor closed, or its number reused by another file."""
    second = workers.two.kw["bind"]
    async with make_read_sessionmaker(second)() as db:  # a read: takes no turn
        conn = await db.connection()
        turn = conn.sync_connection.connection.driver_connection.turn  # type: ignore[union-attr]
    fd, inode = turn._fd, workers.turn.stat().st_ino
    async with workers.one() as holder:
        await holder.execute(text("INSERT INTO t VALUES (1)"))

        async def gives_up() -> None:
            async with workers.two() as db:
                await db.execute(text("INSERT INTO t VALUES (2)"))

        waiting = asyncio.create_task(gives_up())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        closing = asyncio.create_task(second.dispose())  # the worker shuts down
        await asyncio.sleep(0.05)
        assert os.fstat(fd).st_ino == inode  # still the turn's file: the wait is queued
        await holder.commit()
    await asyncio.wait_for(closing, 5)
    assert _turn_is_free(workers.turn)
    async with workers.one() as db:  # the other worker writes on
        await asyncio.wait_for(db.execute(text("INSERT INTO t VALUES (3)")), 2)
        await db.commit()
    assert await _rows(workers.one) == [1, 3]


def _turn_sample(name: str) -> float:
    return REGISTRY.get_sample_value(f"stepup_sqlite_write_turn_{name}") or 0.0


async def test_the_metrics_tell_how_long_writes_waited_for_the_turn_and_held_it(
        workers: Workers) -> None:
    """What an operator reads to tell whether the workers' turn bounds their writes:
    each write transaction's wait and hold are observed, a read's are not."""
    before = {n: _turn_sample(n) for n in ("wait_seconds_count", "wait_seconds_sum",
                                           "held_seconds_count", "held_seconds_sum")}
    async with make_read_sessionmaker(workers.first)() as db:  # a read: no turn
        await db.execute(text("SELECT n FROM t"))
    async with workers.one() as holder:
        await holder.execute(text("INSERT INTO t VALUES (1)"))  # holds the turn
        waiting = asyncio.create_task(_insert_two(workers))
        await asyncio.sleep(0.1)
        await holder.commit()
    await asyncio.wait_for(waiting, 5)
    after = {n: _turn_sample(n) - v for n, v in before.items()}
    assert after["wait_seconds_count"] == after["held_seconds_count"] == 2
    assert after["held_seconds_sum"] >= 0.1  # the holder's, over its 0.1 s
    # The other worker's, while it was held: it asked a moment after the 0.1 s began.
    assert 0.08 <= after["wait_seconds_sum"] < 5
