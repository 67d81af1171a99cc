"""A serving worker's commits leave the write-ahead log to a checkpoint thread
(store/sqlite_checkpoint.py): a commit no longer copies the log back at 1,000 pages, the
thread does; past RESTART_PAGES the thread starts the log again under the write turn; and
the log still has a bound (a commit checkpoints past BACKSTOP_PAGES)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store import sqlite_checkpoint
from stepup.store.db import make_engine, make_sessionmaker
from stepup.store.sqlite_turn import WriterTurn


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with make_sessionmaker(engine)() as db:
        await db.execute(text("CREATE TABLE t (n INTEGER, pad BLOB)"))
        await db.commit()
    try:
        yield engine
    finally:
        await engine.dispose()


async def _write(engine: AsyncEngine, pages: int) -> None:
    """Commits that add about ``pages`` pages of 4 KiB to the log, one per commit."""
    async with make_sessionmaker(engine)() as db:
        for n in range(pages):
            await db.execute(text("INSERT INTO t VALUES (:n, zeroblob(4000))"), {"n": n})
            await db.commit()


async def test_commits_leave_the_log_to_the_checkpointer(engine: AsyncEngine) -> None:
    checkpointer = await sqlite_checkpoint.in_background(engine)
    assert checkpointer is not None
    try:
        await _write(engine, 1_500)  # past SQLite's own 1,000 pages
        # Nothing was copied by the commits: the first checkpoint finds it all to do.
        busy, log, done = await asyncio.to_thread(checkpointer.checkpoint)
        assert (busy, done) == (0, log)
        assert log >= 1_500
        # The next write starts the log again from its beginning.
        await _write(engine, 10)
        _, log, done = await asyncio.to_thread(checkpointer.checkpoint)
        assert log < 100 and done == log
    finally:
        checkpointer.close()


async def test_without_it_a_commit_checkpoints_at_a_thousand_pages(tmp_path: Path) -> None:
    """What the checkpointer takes away from the commits (SQLite's default)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    try:
        async with make_sessionmaker(engine)() as db:
            await db.execute(text("CREATE TABLE t (n INTEGER, pad BLOB)"))
            await db.commit()
        await _write(engine, 1_500)
        checkpointer = sqlite_checkpoint.Checkpointer(str(tmp_path / "d.db"))
        try:
            _, log, _ = await asyncio.to_thread(checkpointer.checkpoint)
        finally:
            checkpointer.close()
        # The commit that passed 1,000 pages copied them back; the log started again.
        assert log < 1_000
    finally:
        await engine.dispose()


async def test_the_log_stays_bounded_if_the_thread_falls_behind(engine: AsyncEngine) -> None:
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, sqlite_checkpoint.BACKSTOP_PAGES + 500)
    checkpointer = sqlite_checkpoint.Checkpointer(engine.url.database or "")
    try:
        _, log, _ = await asyncio.to_thread(checkpointer.checkpoint)
    finally:
        checkpointer.close()
    assert log < sqlite_checkpoint.BACKSTOP_PAGES


async def test_run_forever_checkpoints_until_cancelled(engine: AsyncEngine) -> None:
    checkpointer = await sqlite_checkpoint.in_background(engine)
    assert checkpointer is not None
    checkpointer.every = 0.01
    await _write(engine, 1_200)
    task = asyncio.create_task(checkpointer.run_forever())
    try:
        for _ in range(500):  # up to 5 s
            await asyncio.sleep(0.01)
            if checkpointer.last is not None and checkpointer.last[2] >= 1_200:
                break
        assert checkpointer.last is not None
        busy, log, done = checkpointer.last
        assert busy == 0 and done == log >= 1_200  # every page written, copied back
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert checkpointer._conn is None  # closed on the way out


async def test_nothing_to_checkpoint_in_memory() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert await sqlite_checkpoint.in_background(engine) is None
    finally:
        await engine.dispose()


class _FailsOnce(sqlite_checkpoint.Checkpointer):
    """A checkpoint that fails once with something other than a SQLite error (as
    running out of memory would), then works."""

    failed = False

    def checkpoint(self) -> tuple[int, int, int]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("out of something")
        return super().checkpoint()


async def test_run_forever_goes_on_after_an_unexpected_failure(engine: AsyncEngine) -> None:
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_200)
    checkpointer = _FailsOnce(engine.url.database or "", every=0.01)
    task = asyncio.create_task(checkpointer.run_forever())
    try:
        for _ in range(500):  # up to 5 s
            await asyncio.sleep(0.01)
            if checkpointer.last is not None:
                break
        assert checkpointer.failed and checkpointer.last is not None
        assert checkpointer.last[2] >= 1_200  # the round after the failure copied it all
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class _WritesNeverStop(sqlite_checkpoint.Checkpointer):
    """A write lands while each PASSIVE checkpoint runs, as under a steady stream of
    writes: here a reader holds the snapshot from before it, so the checkpoint copies
    everything but that write's page, and the next write cannot start the log again."""

    def checkpoint(self) -> tuple[int, int, int]:
        reader = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        writer = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM t").fetchone()
            writer.execute("INSERT INTO t VALUES (-1, zeroblob(4000))")
            return super().checkpoint()
        finally:
            reader.close()
            writer.close()


def _log_after_a_write(path: str) -> int:
    """Frames in the log after one more write (a plain PASSIVE's count)."""
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        conn.execute("INSERT INTO t VALUES (-2, zeroblob(10))")
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def _turn(path: str) -> WriterTurn:
    loop = asyncio.get_running_loop()
    return WriterTurn(path, lambda call: loop.run_in_executor(None, call))


async def test_without_a_restart_the_log_only_grows(engine: AsyncEngine) -> None:
    """What the RESTART is for: PASSIVE rounds alone never start the log again while
    the writes go on."""
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_500)
    path = engine.url.database or ""
    checkpointer = _WritesNeverStop(path, restart_pages=10**9)
    try:
        for _ in range(3):
            await checkpointer.round()
    finally:
        checkpointer.close()
    assert checkpointer.restarts == 0
    assert _log_after_a_write(path) >= 1_500


async def test_past_restart_pages_the_thread_starts_the_log_again(
        engine: AsyncEngine) -> None:
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_500)  # no commit copies it: the backstop is further out
    path = engine.url.database or ""
    checkpointer = _WritesNeverStop(path, restart_pages=1_000)
    try:
        await checkpointer.round()
        assert checkpointer.restarts == 1
        assert checkpointer.last is not None
        busy, log, done = checkpointer.last
        assert busy == 0 and done == log >= 1_500  # every frame copied
        # The turn was given back: a worker takes it at once.
        turn = _turn(path)
        try:
            assert turn.try_take()
            turn.give_back()
        finally:
            turn.close()
    finally:
        checkpointer.close()
    assert _log_after_a_write(path) < 10  # the next write started the log again


async def test_the_restart_waits_for_the_write_turn(engine: AsyncEngine,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker writes while it runs: a worker holding the turn holds it off."""
    monkeypatch.setattr(sqlite_checkpoint, "TURN_WAIT_SECONDS", 0.05)
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_500)
    path = engine.url.database or ""
    worker = _turn(path)
    checkpointer = _WritesNeverStop(path, restart_pages=1_000)
    try:
        assert worker.try_take()
        await checkpointer.round()  # gives up after TURN_WAIT_SECONDS
        assert checkpointer.restarts == 0
        worker.give_back()
        await checkpointer.round()
        assert checkpointer.restarts == 1
    finally:
        worker.close()
        checkpointer.close()


async def _a_reader_on_a_long_log(engine: AsyncEngine
                                  ) -> tuple[str, sqlite_checkpoint.Checkpointer,
                                             sqlite3.Connection]:
    """A log past a checkpointer's RESTART_PAGES and a reader on its last frame, in an
    open read transaction: (the database's path, the checkpointer, the reader)."""
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_500)
    path = engine.url.database or ""
    checkpointer = sqlite_checkpoint.Checkpointer(path, restart_pages=1_000)
    await _write(engine, 1)
    reader = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # on the log's last frame
    return path, checkpointer, reader


async def test_a_reader_on_the_log_makes_the_restart_busy(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers are waited for RESTART_WAIT_MS at most, the turn held meanwhile; then
    the round ends, the turn is given back, and a later round starts the log again."""
    monkeypatch.setattr(sqlite_checkpoint, "RESTART_WAIT_MS", 20)
    path, checkpointer, reader = await _a_reader_on_a_long_log(engine)
    try:
        await checkpointer.round()
        assert checkpointer.restarts == 0 and checkpointer.last is not None
        assert checkpointer.last[0] == 1  # busy
        turn = _turn(path)
        try:
            assert turn.try_take()  # given back
            turn.give_back()
        finally:
            turn.close()
        reader.execute("COMMIT")
        await checkpointer.round()
        assert checkpointer.restarts == 1
    finally:
        reader.close()
        checkpointer.close()


async def test_the_restart_goes_through_as_soon_as_its_readers_leave(
        engine: AsyncEngine) -> None:
    """A reader on the log when the RESTART begins is asked after every
    RESTART_POLL_MS, not after SQLite's busy handler's growing sleeps (tries at 0, 1, 3,
    8, 18, 33, 53, 78 ms…): the RESTART goes through within a few milliseconds of the
    reader's end, while the writers wait for the turn. (With the handler, a reader gone
    55 ms into the RESTART is seen at 78 ms.)"""
    _path, checkpointer, reader = await _a_reader_on_a_long_log(engine)
    ended: list[float] = []
    answered: list[float] = []

    def leave() -> None:
        reader.execute("COMMIT")
        ended.append(time.monotonic())

    ask = checkpointer._checkpoint

    def timed(mode: str) -> tuple[int, int, int]:
        if mode == "RESTART" and not answered:
            answered.append(0.0)  # its first try: the reader leaves 55 ms from now
            threading.Timer(0.055, leave).start()
        answer = ask(mode)
        if mode == "RESTART" and answer[0] == 0:
            answered.append(time.monotonic())
        return answer

    checkpointer._checkpoint = timed  # type: ignore[method-assign]
    try:
        await checkpointer.round()
        assert checkpointer.restarts == 1 and ended and len(answered) == 2
        assert answered[1] - ended[0] < 0.010
    finally:
        reader.close()
        checkpointer.close()


async def test_a_turn_given_up_on_is_not_kept(engine: AsyncEngine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread's wait for the turn goes on after the round gave up on it; once it
    gets the turn it gives it straight back, or every worker would wait for it."""
    monkeypatch.setattr(sqlite_checkpoint, "TURN_WAIT_SECONDS", 0.05)
    assert await sqlite_checkpoint.in_background(engine) is not None
    await _write(engine, 1_500)
    path = engine.url.database or ""
    worker = _turn(path)
    other = _turn(path)
    checkpointer = _WritesNeverStop(path, restart_pages=1_000)
    try:
        assert worker.try_take()
        await checkpointer.round()  # gave up: its flock still waits
        assert checkpointer.restarts == 0
        worker.give_back()
        await asyncio.sleep(0.2)  # the thread's flock gets the turn meanwhile
        for _ in range(200):  # then up to 2 s for it to be free again
            if other.try_take():
                break
            await asyncio.sleep(0.01)
        assert other.held
        other.give_back()
    finally:
        worker.close()
        other.close()
        checkpointer.close()
