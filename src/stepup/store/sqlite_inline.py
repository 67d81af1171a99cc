"""SQLAlchemy's aiosqlite adapter, with statements run straight on ``sqlite3``.

store/sqlite_connection.py runs SQLite on the event loop's own thread
(``InlineConnection``), so nothing here ever waits. SQLAlchemy's adapter does not know
that: for every statement it made an aiosqlite cursor, took an ``asyncio.Lock`` and
handed four coroutines (the cursor, execute, fetchall, close) up to the event loop and
back through greenlet switches, each of which then ran at once. This adapter calls the
``sqlite3`` cursor directly, as the synchronous pysqlite dialect would: the same SQL,
the same parameters, the same rows and the same errors (``sqlite3``'s, which SQLAlchemy
wraps as ever), with one hop a statement instead of four. Commit and rollback likewise.
Measured with bench/instructions.py: a verification 6.10 → 5.70 M instructions, the
login step 8.34 → 7.71 M.

Used by ``make_engine`` for SQLite through ``create_async_engine(module=...)``; the
connection itself is still made by ``connect_inline`` (store/sqlite_connection.py).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, Protocol, cast

import aiosqlite
from sqlalchemy import util
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_


async def _settled() -> None:
    """Awaited once per statement (at once: nothing suspends). SQLAlchemy's
    ``AsyncConnection.execute`` refuses a statement during which nothing was awaited
    (``AwaitRequired``: its check that the driver is an async one); the session's calls
    do not ask, but the one hop costs ~1 % of a verification, so every statement pays it
    and any caller works."""


class _Ending(Protocol):
    """The connection's own hooks (store/sqlite_connection.py, InlineConnection): at the
    end of a transaction (the next worker's turn to write), and before the first write
    of a read-first one."""

    reading: bool

    def end_of_transaction(self) -> None: ...

    def write_now(self, *, wait: bool = True) -> bool: ...


def writes(sql: str) -> bool:
    """Whether ``sql`` may write: anything but a plain SELECT (StepUp's reads are all
    compiled as one). Asked only while a read-first transaction has not written yet."""
    return not sql.startswith("SELECT")


def before(connection: Any, sql: str) -> None:
    """Before ``sql`` on an inline connection: the write lock taken first if it is the
    first write of a read-first transaction (``InlineConnection.write_now``)."""
    ending = cast(_Ending, connection)
    if ending.reading and writes(sql):
        ending.write_now()


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor over the ``sqlite3`` cursor of an inline connection. Rows are
    fetched at execute, as SQLAlchemy's adapter does (its results read ``_rows``).
    ``_cursor`` holds the ``sqlite3`` cursor (the base class's ``description``,
    ``rowcount`` and ``lastrowid`` read it as they are)."""

    __slots__ = ()
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: InlineAdaptedConnection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = util.EMPTY_DICT
        self._rows = collections.deque()
        try:
            self._cursor = cast(Any, adapt_connection.raw.cursor())
        except Exception as error:
            adapt_connection._handle_exception(error)

    @property
    def _raw(self) -> sqlite3.Cursor:
        return cast(sqlite3.Cursor, self._cursor)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor = self._raw
        try:
            before(self._connection, operation)
            if parameters is None:
                cursor.execute(operation)
            else:
                cursor.execute(operation, parameters)
            if cursor.description:
                self._rows = collections.deque(cursor.fetchall())
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        await_(_settled())

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            before(self._connection, operation)
            self._raw.executemany(operation, seq_of_parameters)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        await_(_settled())

    def close(self) -> None:
        self._rows.clear()
        self._raw.close()


class InlineAdaptedConnection(AsyncAdapt_aiosqlite_connection):
    """The adapted connection: cursors, commit and rollback on ``sqlite3`` directly.
    Server-side cursors (never used by StepUp) keep SQLAlchemy's adapter."""

    __slots__ = ()
    _cursor_cls = InlineCursor  # type: ignore[assignment]  # a subclass of the base's

    @property
    def raw(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = self._connection._conn
        return conn

    def commit(self) -> None:
        if self._connection._connection:
            try:
                self.raw.commit()
            except Exception as error:
                self._handle_exception(error)
            finally:
                cast(_Ending, self._connection).end_of_transaction()

    def rollback(self) -> None:
        if self._connection._connection:
            try:
                self.raw.rollback()
            except Exception as error:
                self._handle_exception(error)
            finally:
                cast(_Ending, self._connection).end_of_transaction()


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given: it makes
    ``InlineAdaptedConnection``s."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> InlineAdaptedConnection:
        creator_fn = kw.pop("async_creator_fn")
        return InlineAdaptedConnection(self, await_(creator_fn(*arg, **kw)))
