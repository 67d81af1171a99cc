"""SQLite workers take turns to write (store/sqlite_turn.py): a worker whose turn is
taken waits with its event loop free and writes as soon as the other's transaction
ends; a wait that is cancelled or runs out never keeps the turn from the others."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stepup.store import db as db_module
from stepup.store.db import make_engine, make_read_sessionmaker, make_sessionmaker

Sessions = async_sessionmaker[AsyncSession]


async def _two_workers(path: Path) -> tuple[AsyncEngine, Sessions, AsyncEngine, Sessions]:
    """Two engines on one file: what two worker processes have (one connection each)."""
    url = f"sqlite+aiosqlite:///{path}"
    first, second = make_engine(url), make_engine(url)
    one, two = make_sessionmaker(first), make_sessionmaker(second)
    async with one() as db:
        await db.execute(text("CREATE TABLE t (n INTEGER)"))
        await db.commit()
    return first, one, second, two


async def _rows(sessions: Sessions) -> list[int]:
    async with sessions() as db:
        return [n for (n,) in (await db.execute(text("SELECT n FROM t ORDER BY rowid")))]


async def test_a_worker_waits_for_the_turn_with_its_loop_free(tmp_path: Path) -> None:
    first, one, second, two = await _two_workers(tmp_path / "shared.db")
    try:
        async with one() as holder:
            await holder.execute(text("INSERT INTO t VALUES (1)"))  # holds the turn

            async def other_worker() -> None:
                async with two() as db:
                    await db.execute(text("INSERT INTO t VALUES (2)"))
                    await db.commit()

            waiting = asyncio.create_task(other_worker())
            ticks = 0
            while ticks < 10:  # the loop runs the worker's other requests meanwhile
                await asyncio.sleep(0.002)
                ticks += 1
            assert not waiting.done()  # its turn has not come
            await holder.commit()  # the turn passes on
        await asyncio.wait_for(waiting, 5)
        assert await _rows(one) == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()


async def test_the_turn_is_given_back_by_a_rollback_and_a_failed_transaction(
        tmp_path: Path) -> None:
    first, one, second, two = await _two_workers(tmp_path / "shared.db")
    try:
        async with one() as db:
            await db.execute(text("INSERT INTO t VALUES (1)"))
            await db.rollback()
        with pytest.raises(OperationalError):
            async with one() as db:
                await db.execute(text("INSERT INTO nowhere VALUES (1)"))
        async with two() as db:  # neither left the turn taken: this does not wait
            await asyncio.wait_for(db.execute(text("INSERT INTO t VALUES (2)")), 2)
            await db.commit()
        assert await _rows(one) == [2]
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_cancelled_wait_does_not_keep_the_turn(tmp_path: Path) -> None:
    first, one, second, two = await _two_workers(tmp_path / "shared.db")
    try:
        async with one() as holder:
            await holder.execute(text("INSERT INTO t VALUES (1)"))

            async def gives_up() -> None:
                async with two() as db:
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
        for sessions, n in ((one, 3), (two, 4)):
            async with sessions() as db:
                await asyncio.wait_for(db.execute(text(f"INSERT INTO t VALUES ({n})")), 2)
                await db.commit()
        assert await _rows(one) == [1, 3, 4]
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_turn_held_too_long_is_a_database_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "WRITER_WAIT_SECONDS", 0.05)
    first, one, second, two = await _two_workers(tmp_path / "shared.db")
    try:
        async with one() as holder:
            await holder.execute(text("INSERT INTO t VALUES (1)"))
            started = time.monotonic()
            async with two() as db:
                # Answered 503 by web/problems, as a write lock held too long is.
                with pytest.raises(OperationalError, match="locked"):
                    await db.execute(text("INSERT INTO t VALUES (2)"))
            assert time.monotonic() - started < 2
            await holder.commit()
        async with two() as db:  # the worker writes again once the turn is free
            await asyncio.wait_for(db.execute(text("INSERT INTO t VALUES (3)")), 2)
            await db.commit()
        assert await _rows(one) == [1, 3]
    finally:
        await first.dispose()
        await second.dispose()


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


async def test_a_write_transaction_holds_the_turn_until_it_ends(tmp_path: Path) -> None:
    first, one, second, _ = await _two_workers(tmp_path / "shared.db")
    turn = tmp_path / "shared.db-turn"
    try:
        assert _turn_is_free(turn)
        async with one() as db:
            await db.execute(text("SELECT 1"))  # a write transaction (BEGIN IMMEDIATE)
            assert not _turn_is_free(turn)
            await db.commit()
            assert _turn_is_free(turn)
        async with make_read_sessionmaker(first)() as db:  # a read takes no turn
            await db.execute(text("SELECT n FROM t"))
            assert _turn_is_free(turn)
    finally:
        await first.dispose()
        await second.dispose()


async def test_the_turn_file_is_private(tmp_path: Path) -> None:
    first, _, second, _ = await _two_workers(tmp_path / "shared.db")
    try:
        turn = tmp_path / "shared.db-turn"
        assert turn.exists()
        assert turn.stat().st_mode & 0o077 == 0
    finally:
        await first.dispose()
        await second.dispose()
