"""SQLite's connection in a serving worker: one a process, its statements run on the
event loop's own thread, its write transactions taken in turn with the other workers.

aiosqlite hands every call to a helper thread and wakes the loop for its answer, and
those hops cost three times more than StepUp's indexed statements themselves (measured:
a TOTP verification took 9.4 ms with the hops, 3.6 ms without): ``InlineConnection``
runs each call at once instead. A worker waiting for another process's write lock does
not wait in SQLite's busy handler, which would stop its loop: ``BEGIN IMMEDIATE`` is
asked again with the loop free (``_wait_for_writer``), so the worker's requests go on
with everything but the database meanwhile (it has a single connection, so they could
not reach it anyway). SQLAlchemy's adapter is told that statements run inline
(store/sqlite_inline.py): its cursors call ``sqlite3`` directly, without handing each
call to the loop and back. The engine and its sessions are store/db.py's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.util.concurrency import await_

from stepup import metrics
from stepup.store.sqlite_turn import TurnTimeout, WriterTurn

# How long a statement other than BEGIN IMMEDIATE may wait for a lock (SQLite's own
# busy handler): DDL of a migration, a checkpoint.
BUSY_TIMEOUT_MS = 30000


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once, on the calling thread.

    ``turn``: its place in the queue of workers for the write lock (store/sqlite_turn.py);
    ``None`` for a database in memory, which no other process shares."""

    turn: WriterTurn | None = None
    # When the turn was taken (``time.monotonic``) and how long it was waited for: told
    # to the metrics when it is given back (stepup_sqlite_write_turn_*).
    _turn_taken = 0.0
    _turn_waited = 0.0
    #: A read-first transaction that has not written yet (``begin``'s ``read_first``).
    reading = False
    #: A read-first transaction that, when it took the write lock, found that another
    #: connection had committed since its reads (``write_now``).
    overtaken = False
    # The database's version as the read-first transaction's reads saw it
    # (``PRAGMA data_version``), kept from the first attempt to take the lock.
    _read_version: int | None = None

    def run_blocking(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """``fn`` on the connection's helper thread (aiosqlite's, which runs its calls in
        the order given), its answer a future of the event loop: what aiosqlite's own
        ``_execute`` does, without a task of its own to keep."""
        future = asyncio.get_running_loop().create_future()
        self._tx.put_nowait((future, fn))
        return future

    def end_of_transaction(self) -> None:
        """After a COMMIT or ROLLBACK: the next worker's turn to write."""
        self.reading = self.overtaken = False
        self._read_version = None
        turn = self.turn
        if turn is not None and turn.held and not self._conn.in_transaction:
            turn.give_back()
            metrics.write_turn(self._turn_waited, time.monotonic() - self._turn_taken)

    async def close(self) -> None:
        if self.turn is not None:
            self.turn.close()
        await super().close()

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def begin(self, immediate: bool, *, read_first: bool = False) -> None:
        """``BEGIN`` now, from SQLAlchemy's synchronous "begin" hook. The statement has
        no result: run through the engine's whole execution path (``exec_driver_sql``)
        it cost as much as one of the transaction's real statements.

        ``read_first`` (with ``immediate`` False): a deferred transaction whose first
        write is preceded by ``write_now``.

        ``BEGIN IMMEDIATE`` while another process writes waits with the event loop
        free (``_wait_for_writer``) rather than in SQLite's busy handler, which sleeps
        1, 2, 5, 10 … ms with the loop stopped and so wakes late."""
        self.reading = self.overtaken = False
        self._read_version = None
        if not immediate:
            self._conn.execute("BEGIN")
            self.reading = read_first
            return
        self._take_turn(wait=True)
        self._begin_immediate(wait=True)

    def _take_turn(self, *, wait: bool) -> bool:
        """The worker's turn to write (``turn``), waited for with the event loop free;
        without ``wait`` False if it is another worker's."""
        turn = self.turn
        if turn is None:
            return True
        asked = time.monotonic()
        if not turn.try_take():
            if not wait:
                return False
            try:
                await_(turn.wait(WRITER_WAIT_SECONDS))
            except TurnTimeout as exc:
                raise sqlite3.OperationalError(f"database is locked: {exc}") from None
        self._turn_taken = time.monotonic()
        self._turn_waited = self._turn_taken - asked
        return True

    def _begin_immediate(self, *, wait: bool) -> bool:
        """``BEGIN IMMEDIATE``, the turn held; if another process holds the write lock,
        waited for (``_wait_for_writer``), or without ``wait`` False, nothing begun."""
        conn = self._conn
        conn.execute("PRAGMA busy_timeout=0")  # an attempt answers at once
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                if not wait:
                    return False
                _wait_for_writer(conn)
        except BaseException:
            self.end_of_transaction()  # no transaction began: the turn goes on
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return True

    def write_now(self, *, wait: bool = True) -> bool:
        """A read-first transaction is about to write: its snapshot is let go (it only
        read, so nothing is lost) and ``BEGIN IMMEDIATE`` taken in its place, in the
        worker's turn. With ``wait`` (from SQLAlchemy's greenlet) the turn and another
        process's lock are waited for; without it (store/driver.py, from the coroutine)
        False when either is another's, the transaction still reading, in its snapshot
        or a fresh one that nothing has read from.

        The reads before it were done without the write lock, and the workers' writes
        that other transactions queued meanwhile went on: the write lock is held only
        for the writes (bench/README.md, "After round 17"). So a read-first transaction
        writes what must still be as it read it as a compare-and-set (a method's step,
        a login flow's spending, the audit chain's head) or as a count that answers its
        new value (a key's call, a guard's failures); reads again, under the lock, what
        must hold when it writes, if another connection committed since its reads
        (``overtaken``: a right code's guards, ``store.db.overtaken``); and takes
        ``write_turn`` before a read that stands for a lock (PostgreSQL's
        ``SELECT … FOR UPDATE``).

        The snapshot is let go before the turn is waited for, not after: the checkpoint
        thread's RESTART (store/sqlite_checkpoint.py) holds the turn while it waits for
        the readers on the log, and a reader waiting for the turn would keep it waiting
        until ``RESTART_WAIT_MS`` ran out, every worker's writes with it (100 ms each
        round, measured: "After round 18" in bench/README.md)."""
        seen = self._version_of_reads()
        free = self._take_turn(wait=False)
        if not free and not wait:
            return False
        self._conn.execute("COMMIT")
        if not free:
            try:
                self._take_turn(wait=True)
            except BaseException:
                self._conn.execute("BEGIN")  # still reading, as the caller left it
                raise
        if not self._begin_immediate(wait=wait):
            self._conn.execute("BEGIN")
            if self.turn is not None:
                self.turn.give_back()
            return False
        self.reading = False
        self.overtaken = self._data_version() != seen
        return True

    def _version_of_reads(self) -> int:
        """The version the transaction's reads saw: asked in its snapshot, before the
        first attempt to take the lock lets that snapshot go, and kept from then on."""
        if self._read_version is None:
            self._read_version = self._data_version()
        return self._read_version

    def _data_version(self) -> int:
        """``PRAGMA data_version``: it moves when another connection (of any process)
        commits, as this connection sees the database; not for its own commits."""
        version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version


# How often a worker asks again for the write lock another process holds, and for how
# long at most (then the last refusal is raised: OperationalError, answered 503).
WRITER_POLL_SECONDS = (0.0001, 0.0005)
WRITER_WAIT_SECONDS = 30.0


def _wait_for_writer(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` on ``conn`` (its busy timeout off) once the other process's
    write ends: asked again every 0.1 ms, backing off to 0.5 ms, the event loop running
    the worker's other requests in between (from SQLAlchemy's greenlet, where the
    "begin" hook runs). Past ``WRITER_WAIT_SECONDS`` the last refusal is raised: a
    database locked that long is answered 503, as the busy timeout's was."""
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    delay, most = WRITER_POLL_SECONDS
    while True:
        await_(asyncio.sleep(delay))
        delay = min(delay * 2, most)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise


def shared_file(url: str) -> str | None:
    """The file of a SQLite URL, which other processes may open too; ``None`` for a
    database in memory or named by a ``file:`` URI."""
    path = make_url(url).database
    return path if path and path != ":memory:" and not path.startswith("file:") else None


async def connect_inline(url: str) -> aiosqlite.Connection:
    path = make_url(url).database or ":memory:"
    # check_same_thread: the connection is opened by aiosqlite's helper thread (which
    # stays for the rare calls SQLAlchemy sends it directly) and used on the loop's.
    connector = partial(sqlite3.connect, path, timeout=30, check_same_thread=False)
    conn = InlineConnection(connector, iter_chunk_size=64)
    conn._thread.daemon = True  # as SQLAlchemy does: a forgotten engine never blocks exit
    await conn
    if shared_file(url) is not None:
        conn.turn = WriterTurn(path, conn.run_blocking)
    return conn
