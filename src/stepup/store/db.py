"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction: a
deferred transaction that later wants to write can fail at once with SQLITE_BUSY
instead of waiting, and several worker processes share one file. Sessions made by
:func:`make_read_sessionmaker` are the exception: they only read, so they begin a
deferred transaction (``BEGIN``), which in WAL mode takes no write lock and never waits
for a writer. Sessions made by :func:`make_read_first_sessionmaker` begin deferred too, and
take the write lock at their first write (``InlineConnection.write_now``): what they read
before it is a snapshot, as under PostgreSQL's READ COMMITTED, and everything from their
first write on runs as one writer's, as in any other transaction.

SQLite statements run on the event loop's own thread, on one connection a worker
(store/sqlite_connection.py, ``InlineConnection``). PostgreSQL (asyncpg) is asynchronous
on its own.
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from stepup.store.driver import open_inline
from stepup.store.sqlite_connection import (
    BUSY_TIMEOUT_MS,
    InlineConnection,
    connect_inline,
)
from stepup.store.sqlite_inline import InlineDBAPI
from stepup.store.sqlite_pool import FirstComeFirstServedPool


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        # One connection per process: SQLite has one writer anyway, and transactions
        # queued in the pool wait their turn without the busy handler's sleeps (which
        # made p95 hundreds of milliseconds under load). Processes still share the file
        # through the busy timeout.
        engine = create_async_engine(url, async_creator=partial(connect_inline, url),
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
        options = conn.get_execution_options()
        read_first = options.get(READ_FIRST, False)
        deferred = read_first or options.get(READ_ONLY, False)
        driver: InlineConnection = conn.connection.driver_connection
        try:
            driver.begin(immediate=not deferred, read_first=read_first)
        except sqlite3.Error as exc:
            # Raised as the engine raises a failed statement's error: a database locked
            # past the busy timeout is an OperationalError, answered 503 (web/problems).
            raise DBAPIError.instance("BEGIN", None, exc, sqlite3.Error) from exc


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


def of_transaction(db: AsyncSession) -> dict[str, Any]:
    """A dict that lives as long as ``db``'s current transaction: what one transaction
    learns about its own locks and checks (``store.audit.took_head``,
    ``services.ratelimit.hold``), gone at its COMMIT or ROLLBACK, where the session's own
    ``info`` lasts across them."""
    session = db.sync_session
    tx = session.get_transaction()
    if tx is None:
        return {}  # nothing begun: nothing to keep
    held = session.info.get(_OF_TRANSACTION)
    if held is None or held[0]() is not tx:
        # By a weak reference: the transaction holds the session, whose ``info`` this
        # is, and a cycle would leave both to the cyclic collector.
        held = session.info[_OF_TRANSACTION] = (weakref.ref(tx), {})
    return held[1]


_OF_TRANSACTION = "stepup_of_transaction"


async def write_turn(db: AsyncSession) -> None:
    """Before a read that stands for a lock (PostgreSQL's ``SELECT … FOR UPDATE``,
    which SQLite has not): a read-first SQLite transaction that has not written yet
    takes the write lock now (``InlineConnection.write_now``), so the read and the
    writes that follow are one writer's. Nothing for any other transaction: SQLite's
    others hold the write lock from ``BEGIN IMMEDIATE``, PostgreSQL's read locks."""
    if db.get_bind().dialect.name != "sqlite":
        return
    conn = open_inline(db)
    if conn is not None and not _inline(conn.connection.driver_connection).reading:
        return
    await db.run_sync(_write_turn_now)


def _inline(driver: Any) -> InlineConnection:
    assert isinstance(driver, InlineConnection)
    return driver


def overtaken(db: AsyncSession) -> bool:
    """Whether ``db``'s transaction is a read-first SQLite one that, taking the write
    lock (``write_turn``, or its first write), found another connection's commit since
    its reads (``InlineConnection.overtaken``): what it read before may have changed,
    so a check that must hold when it writes reads again (``services.verification.
    check_code``'s guards). False for any other transaction, and on PostgreSQL, whose
    read-first sessions are READ COMMITTED ones, as all its others."""
    conn = open_inline(db)
    return conn is not None and _inline(conn.connection.driver_connection).overtaken


def _write_turn_now(session: Session) -> None:
    driver = _inline(session.connection().connection.driver_connection)
    if driver.reading:
        driver.write_now()


# Execution options of the connections of read sessions (see make_read_sessionmaker) and
# of read-first ones (make_read_first_sessionmaker).
READ_ONLY = "stepup_read_only"
READ_FIRST = "stepup_read_first"


class ClosingSession(AsyncSession):
    """A session that, holding no transaction as it leaves ``async with``, closes there
    and then.

    SQLAlchemy 2.1 closes a session leaving ``async with`` in a new task under
    ``asyncio.shield``, so that a cancellation arriving mid-close cannot abandon it
    with a connection half returned, and runs the close in its greenlet, for the
    driver calls that give the connection back. A session whose transaction ended
    (committed, or rolled back by ``Runtime``'s sessions before they leave) holds no
    connection: its close only forgets its objects, never suspends, and needs neither
    (a task, a shield, a turn of the event loop and a greenlet, per call). One still in
    a transaction is closed as SQLAlchemy closes it."""

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if self.sync_session.in_transaction():
            await self._close_in_transaction(type_, value, traceback)
        else:
            self.sync_session.close()

    async def _close_in_transaction(self, type_: Any, value: Any, traceback: Any) -> None:
        await super().__aexit__(type_, value, traceback)


class InlineSession(ClosingSession):
    """A session on an inline SQLite connection, closed without a task of its own even
    in a transaction: on an ``InlineConnection`` nothing in the close ever suspends
    (every driver call runs at once on this thread), so no cancellation can arrive
    before it ends and the task is pure cost. PostgreSQL's sessions keep the shielded
    close for a transaction still open."""

    async def _close_in_transaction(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return _sessions(engine)


def _sessions(engine: AsyncEngine, **options: bool) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``, their connections given execution ``options`` (which the
    SQLite "begin" hook reads: READ_ONLY, READ_FIRST)."""
    bind = engine.execution_options(**options) if options else engine
    return async_sessionmaker(bind, class_=_session_class(engine), expire_on_commit=False,
                              autoflush=False)


def _session_class(engine: AsyncEngine) -> type[AsyncSession]:
    return InlineSession if engine.dialect.name == "sqlite" else ClosingSession


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for short reads that are never committed (the user and the hashes a slow
    check needs): on SQLite a deferred transaction, so no write lock is taken and other
    workers' writes go on meanwhile; on PostgreSQL reads take no lock that blocks a
    writer anyway. The same pool serves both kinds."""
    return _sessions(engine, **{READ_ONLY: True})


def make_read_first_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that read first and then write, for a hot call whose writes hold
    whatever they need still as compare-and-sets and counts (``InlineConnection.
    write_now``): on SQLite a deferred transaction that takes the write lock at its
    first write, so the reads and the work between them (a code's check) run while
    other workers write; on PostgreSQL, sessions as ``make_sessionmaker``'s, whose
    READ COMMITTED transactions already read before they lock."""
    return _sessions(engine, **{READ_FIRST: True})
