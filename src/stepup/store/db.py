"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction: a
deferred transaction that later wants to write can fail at once with SQLITE_BUSY
instead of waiting, and several worker processes share one file. Sessions made by
:func:`make_read_sessionmaker` are the exception: they only read, so they begin a
deferred transaction (``BEGIN``), which in WAL mode takes no write lock and never waits
for a writer.

SQLite statements run on the event loop's own thread (``InlineConnection``): aiosqlite
hands every call to a helper thread and wakes the loop for its answer, and those hops
cost three times more than StepUp's indexed statements themselves (measured: a TOTP
verification took 9.4 ms with the hops, 3.6 ms without). A worker waiting for another
process's write lock does not wait in SQLite's busy handler, which would stop its loop:
``BEGIN IMMEDIATE`` is asked again with the loop free (``_wait_for_writer``), so the
worker's requests go on with everything but the database meanwhile (it has a single
connection, so they could not reach it anyway). SQLAlchemy's adapter is told that
statements run inline (store/sqlite_inline.py): its cursors call ``sqlite3`` directly,
without handing each call to the loop and back.
PostgreSQL (asyncpg) is asynchronous on its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import await_

from stepup import metrics
from stepup.store.driver import open_inline
from stepup.store.sqlite_inline import InlineDBAPI
from stepup.store.sqlite_pool import FirstComeFirstServedPool
from stepup.store.sqlite_turn import TurnTimeout, WriterTurn

# How long a statement other than BEGIN IMMEDIATE may wait for a lock (SQLite's own
# busy handler): DDL of a migration, a checkpoint.
BUSY_TIMEOUT_MS = 30000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        # One connection per process: SQLite has one writer anyway, and transactions
        # queued in the pool wait their turn without the busy handler's sleeps (which
        # made p95 hundreds of milliseconds under load). Processes still share the file
        # through the busy timeout.
        engine = create_async_engine(url, async_creator=partial(_connect_inline, url),
                                     module=InlineDBAPI(), poolclass=FirstComeFirstServedPool,
                                     pool_size=1, max_overflow=0, pool_timeout=30)
        _tune_sqlite(engine)
        return engine
    # Bounded waits everywhere: an unreachable database answers 503 in seconds, never hangs.
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    _ping_idle_connections(engine)
    _broken_protocol_is_a_disconnect(engine)
    return engine


# A pooled connection idle this long is pinged before use. SQLAlchemy's pool_pre_ping
# pings every checkout: two extra round trips per verification (a tenth of its time).
IDLE_PING_SECONDS = 10.0


def _broken_protocol_is_a_disconnect(engine: AsyncEngine) -> None:
    """A connection the server terminated under a statement can surface from asyncpg as
    an "internal client error" (its protocol state is broken) before the connection
    counts as closed, which is all SQLAlchemy's dialect checks. It is unusable either
    way: mark it a disconnect, so the pool drops it and the error says so
    (``connection_invalidated``, answered 503)."""
    from asyncpg.exceptions import InternalClientError  # type: ignore[import-untyped]

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        cause = ctx.original_exception.__cause__
        if not ctx.is_disconnect and isinstance(cause, InternalClientError):
            ctx.is_disconnect = True


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for idle connections only: one that fails its
    ping is replaced before use. A connection that dies while in steady use (a database
    restart) fails that one request with a 503 and is dropped from the pool."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # any failure: the pool retries with a new connection
            raise DisconnectionError("idle connection failed its ping") from exc


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once, on the calling thread.

    ``turn``: its place in the queue of workers for the write lock (store/sqlite_turn.py);
    ``None`` for a database in memory, which no other process shares."""

    turn: WriterTurn | None = None
    # When the turn was taken (``time.monotonic``) and how long it was waited for: told
    # to the metrics when it is given back (stepup_sqlite_write_turn_*).
    _turn_taken = 0.0
    _turn_waited = 0.0

    def run_blocking(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """``fn`` on the connection's helper thread (aiosqlite's, which runs its calls in
        the order given), its answer a future of the event loop: what aiosqlite's own
        ``_execute`` does, without a task of its own to keep."""
        future = asyncio.get_running_loop().create_future()
        self._tx.put_nowait((future, fn))
        return future

    def end_of_transaction(self) -> None:
        """After a COMMIT or ROLLBACK: the next worker's turn to write."""
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

    def begin(self, immediate: bool) -> None:
        """``BEGIN`` now, from SQLAlchemy's synchronous "begin" hook. The statement has
        no result: run through the engine's whole execution path (``exec_driver_sql``)
        it cost as much as one of the transaction's real statements.

        ``BEGIN IMMEDIATE`` while another process writes waits with the event loop
        free (``_wait_for_writer``) rather than in SQLite's busy handler, which sleeps
        1, 2, 5, 10 … ms with the loop stopped and so wakes late."""
        if not immediate:
            self._conn.execute("BEGIN")
            return
        turn = self.turn
        if turn is not None:
            asked = time.monotonic()
            if not turn.try_take():
                try:
                    await_(turn.wait(WRITER_WAIT_SECONDS))
                except TurnTimeout as exc:
                    raise sqlite3.OperationalError(f"database is locked: {exc}") from None
            self._turn_taken = time.monotonic()
            self._turn_waited = self._turn_taken - asked
        conn = self._conn
        conn.execute("PRAGMA busy_timeout=0")  # an attempt answers at once
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                _wait_for_writer(conn)
        except BaseException:
            self.end_of_transaction()  # no transaction began: the turn goes on
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def run_now(self, sql: str) -> None:
        """A statement without parameters or result (a savepoint), straight on the
        driver, for the reason ``begin`` gives."""
        try:
            self._conn.execute(sql)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


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


async def _connect_inline(url: str) -> aiosqlite.Connection:
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


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        driver: InlineConnection = conn.connection.driver_connection
        try:
            driver.begin(immediate=not read_only)
        except sqlite3.Error as exc:
            # Raised as the engine raises a failed statement's error: a database locked
            # past the busy timeout is an OperationalError, answered 503 (web/problems).
            raise DBAPIError.instance("BEGIN", None, exc, sqlite3.Error) from exc


async def savepoint(db: AsyncSession, name: str) -> bool:
    """A savepoint in ``db``'s transaction on SQLite, taken on the driver (microseconds,
    where one more statement through SQLAlchemy costs as much as a real one); False on
    PostgreSQL, where none is taken."""
    if db.get_bind().dialect.name != "sqlite":
        return False
    await _run_on_driver(db, f"SAVEPOINT {name}")
    return True


async def rollback_to(db: AsyncSession, name: str) -> None:
    """Undo what ``db``'s transaction did after ``savepoint(db, name)``; it stays open.
    What the session's objects hold is dropped too (``expunge_all``), so that committing
    next keeps exactly what was there at the savepoint."""
    assert db.get_bind().dialect.name == "sqlite", "savepoints are SQLite's"
    db.expunge_all()
    await _run_on_driver(db, f"ROLLBACK TO {name}")


def last_in_commit(db: AsyncSession, work: Callable[[Session], None]) -> None:
    """Run ``work`` inside every COMMIT of ``db`` as its last statements: after the
    session's pending changes are flushed, just before COMMIT is sent (SQLAlchemy's
    ``before_commit``, whose own flush then finds nothing left to write). ``work`` runs
    synchronously, on the session's connection. An exception it raises fails the commit
    and leaves the transaction open, for the caller to roll back.

    Kept in the session's ``info`` for the one listener below: a listener of its own on
    each session costs ~0.1 ms to register, a twentieth of a verification."""
    db.sync_session.info[_LAST_IN_COMMIT] = work


_LAST_IN_COMMIT = "stepup_last_in_commit"


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    work = session.info.get(_LAST_IN_COMMIT)
    if work is not None:
        session.flush()
        work(session)


async def _run_on_driver(db: AsyncSession, sql: str) -> None:
    """``sql`` on ``db``'s inline connection: at once when its transaction is open (a
    call that never suspends needs no hop into SQLAlchemy's greenlet), else through
    the session, which begins it."""
    conn = open_inline(db)
    if conn is None:
        await db.run_sync(_on_driver, sql)
        return
    driver = conn.connection.driver_connection
    assert isinstance(driver, InlineConnection)
    driver.run_now(sql)


def _on_driver(session: Session, sql: str) -> None:
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, InlineConnection)
    driver.run_now(sql)


# Execution option of the connections of read sessions (see make_read_sessionmaker).
READ_ONLY = "stepup_read_only"


class InlineSession(AsyncSession):
    """A session on an inline SQLite connection, closed without a task of its own.

    SQLAlchemy 2.1 closes a session leaving ``async with`` in a new task under
    ``asyncio.shield``, so that a cancellation arriving mid-close cannot abandon it
    with a connection half returned. On an ``InlineConnection`` nothing in the close
    ever suspends (every driver call runs at once on this thread), so no cancellation
    can arrive before it ends and the task is pure cost: a task, a shield and a turn
    of the event loop per transaction. PostgreSQL's sessions keep the shielded close."""

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=_session_class(engine), expire_on_commit=False,
                              autoflush=False)


def _session_class(engine: AsyncEngine) -> type[AsyncSession]:
    return InlineSession if engine.dialect.name == "sqlite" else AsyncSession


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for short reads that are never committed (the user and the hashes a slow
    check needs): on SQLite a deferred transaction, so no write lock is taken and other
    workers' writes go on meanwhile; on PostgreSQL reads take no lock that blocks a
    writer anyway. The same pool serves both kinds."""
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}),
                              class_=_session_class(engine), expire_on_commit=False,
                              autoflush=False)
