"""Core statements built once, run straight on the driver's cursor.

A statement of a verification (store/queries.py, store/audit.py, store/api_keys.py) is
built once at import, with bound parameters, and run thousands of times. Through
SQLAlchemy's ``Connection.execute`` each run cost ~45 µs on SQLite on this machine (the
compiled cache's lookup, an execution context, the result's metadata and row objects)
around ~3 µs of ``sqlite3``'s own work. Here a statement is compiled once per dialect and
set of parameter names (``_Plan``), with the bind and result processors of its column
types (dates as SQLAlchemy stores them in SQLite, JSON, …), and then run on the DBAPI
cursor SQLAlchemy would have used: the same SQL, the same parameters after the same
processing, the same values back, in the session's transaction.

What stays SQLAlchemy's: the transaction (the session's connection, begun as ever), the
``before_cursor_execute`` event (bench/pg_floor.py records statements with it), and the
handling of a failure (``Connection._handle_dbapi_exception``: the error wrapped as the
engine wraps it, a lost connection invalidated and dropped from the pool).

On PostgreSQL ``run_asyncpg`` does the same from the coroutine itself, on asyncpg's
connection: the cursor path would hop into SQLAlchemy's greenlet (``run_sync``) and back
out of it to await asyncpg (``await_only``), through the adapter's cursor, ~70 µs of CPU a
statement on this machine around asyncpg's own ~60 (a round trip included). It does what
that adapter does (``_asyncpg_rows``): its lock, its BEGIN if the transaction has not
sent one yet, its cache of prepared statements, its translation of asyncpg's errors.
``run_opened`` picks the path for a session whose transaction is open.

A statement built with the execution option ``UNBEGUN`` is sent on asyncpg without the
BEGIN while its transaction has sent none: a plain read, which under READ COMMITTED sees
what it would have seen inside (each statement reads its own snapshot there, and it
takes no lock), or one that is a whole transaction by itself (a function call that
writes all or nothing: store/audit.py's ``spend_and_record``). If nothing after it
writes, COMMIT sends nothing either (``unbegun`` tells whether a transaction has begun).

Only what compiles to fixed SQL takes this path. A statement whose SQL depends on its
values (an expanding ``IN``), or an INSERT or UPDATE with defaults computed in Python,
goes through ``Connection.execute`` (``run`` answers ``None``).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import await_only, greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

from stepup.store.sqlite_inline import InlineAdaptedConnection, before, writes

Processor = Callable[[Any], Any] | None


class _Plan:
    """One statement compiled for one dialect and one set of parameter names."""

    __slots__ = ("binds", "columns", "results", "row", "sources", "sql", "unbegun")

    def __init__(self, compiled: SQLCompiler, unbegun: bool = False) -> None:
        self.sql = compiled.string
        # Sent on asyncpg without a BEGIN while the transaction has sent none (``UNBEGUN``).
        self.unbegun = unbegun
        order = tuple(compiled.positiontup or ())
        procs: dict[str, Any] = dict(compiled._bind_processors)
        self.binds: tuple[Processor, ...] = tuple(procs.get(name) for name in order)
        # Where each parameter's value comes from: what ``construct_params`` does per
        # call, worked out once (the key given, else the bind's own value).
        params = {name: bind for bind, name in compiled.bind_names.items()}
        self.sources: tuple[tuple[str, str, bool, Any], ...] = tuple(
            (params[n].key, n, params[n].required, params[n].value) for n in order)
        self.columns = compiled._result_columns
        # Result processors, made at the first run: a driver may pick them by the type
        # its cursor describes.
        self.results: tuple[Processor, ...] | None = None
        self.row: type[tuple[Any, ...]] | None = (
            namedtuple("Row", [c.keyname for c in self.columns], rename=True)
            if self.columns else None)

    def args(self, params: dict[str, Any]) -> list[Any]:
        out = []
        for (key, name, required, value), process in zip(self.sources, self.binds,
                                                         strict=True):
            if key in params:
                value = params[key]
            elif name in params:
                value = params[name]
            elif required:
                raise InvalidRequestError(
                    f"A value is required for bind parameter {key!r}", code="cd3x")
            out.append(value if process is None else process(value))
        return out

    def rows(self, cursor: Any, dialect: Dialect) -> list[tuple[Any, ...]]:
        if self.row is None:
            return []
        return self.made(cursor.fetchall(), [d[1] for d in cursor.description], dialect)

    def made(self, fetched: Any, types: list[Any], dialect: Dialect
             ) -> list[tuple[Any, ...]]:
        """The rows, from the driver's (``fetched``) whose columns the driver typed as
        ``types`` (a cursor description's type codes)."""
        make = self.row
        if make is None:
            return []
        procs = self.results
        if procs is None:
            procs = self.results = tuple(
                c.type._cached_result_processor(dialect, t)
                for c, t in zip(self.columns, types, strict=True))
        return [make(*(v if p is None else p(v) for p, v in zip(procs, r, strict=True)))
                for r in fetched]


class Rows:
    """What the callers of ``queries.core`` read from a result: its rows (named tuples:
    ``row[0]``, ``row.name``, ``row._asdict()``) and, for a write, ``rowcount``."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise (NoResultFound if not self._rows else MultipleResultsFound)(
                f"{len(self._rows)} rows where exactly one was required")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


# (statement, dialect, parameter names) → plan, or None where the statement cannot take
# this path. Keyed by the statement object: ``queries.core`` is given statements built
# once at import (a few dozen), so the cache stays that size; past ``_MAX`` entries it
# stops growing and the rest go through the engine.
_plans: dict[tuple[int, str, tuple[str, ...]], tuple[Executable, _Plan | None]] = {}
_MAX = 512


def _planned(dialect: Dialect, statement: Executable, params: dict[str, Any]
             ) -> _Plan | None:
    names = tuple(sorted(params))
    key = (id(statement), dialect.name, names)
    found = _plans.get(key)
    if found is None:
        if len(_plans) >= _MAX:
            return None
        found = _plans[key] = (statement, _plan(statement, names, dialect))  # the
        # statement kept with its plan, so its id stays its own
    return found[1]


def run(conn: Connection, statement: Executable, params: dict[str, Any]) -> Rows | None:
    """Run ``statement`` with ``params`` on ``conn`` (a session's connection, in its
    transaction) straight on the driver's cursor; ``None`` if it must go through
    ``conn.execute`` instead."""
    dialect = conn.dialect
    plan = _planned(dialect, statement, params)
    if plan is None:
        return None
    dbapi_conn: Any = conn.connection.dbapi_connection
    if plan.unbegun and isinstance(dbapi_conn, AsyncAdapt_asyncpg_connection):
        # The first statement of a session comes here, in the greenlet: the adapter's
        # cursor would send BEGIN first.
        rows: Rows | None = await_only(run_asyncpg(conn, statement, params))
        return rows
    try:
        args = plan.args(params)
    except Exception as exc:  # a value missing: wrapped as the engine wraps it
        conn._handle_dbapi_exception(exc, plan.sql, params, None, None)  # raises
        raise
    # SQLite's own cursor where the connection is inline (store/sqlite_inline.py): it
    # never suspends, so this runs with or without a greenlet (``open_inline``). The
    # first write of a read-first transaction takes the write lock first: outside the
    # greenlet only if it is free (else through the engine, ``None``, to wait for it).
    inline = dbapi_conn._connection if isinstance(dbapi_conn, InlineAdaptedConnection) \
        else None
    if inline is not None and inline.reading and writes(plan.sql) and not in_greenlet():
        try:
            if not inline.write_now(wait=False):
                return None
        except Exception as exc:
            conn._handle_dbapi_exception(exc, plan.sql, args, None, None)  # raises
            raise
    cursor: Any = dbapi_conn.raw.cursor() if inline is not None else dbapi_conn.cursor()
    try:
        if inline is not None:
            before(inline, plan.sql)
        if _listened(conn):
            conn.dispatch.before_cursor_execute(conn, cursor, plan.sql, args, None, False)
        cursor.execute(plan.sql, args)
        result = Rows(plan.rows(cursor, dialect), cursor.rowcount)
    except Exception as exc:
        conn._handle_dbapi_exception(exc, plan.sql, args, cursor, None)  # raises
        raise
    finally:
        cursor.close()
    return result


def _listened(conn: Connection) -> bool:
    """Whether anything listens for ``before_cursor_execute`` on ``conn`` (or its
    engine). SQLAlchemy asks whether the connection has any event listener at all, and
    every engine here has some (SQLite's BEGIN, the pool's checkout): the dispatch to
    no listener cost every statement ~2 µs."""
    return bool(conn.dispatch.before_cursor_execute)


async def run_asyncpg(conn: Connection, statement: Executable, params: dict[str, Any]
                      ) -> Rows | None:
    """``run`` on PostgreSQL, awaited from the coroutine: ``conn`` is a session's
    connection in its transaction (``opened``) on asyncpg. ``None`` if the statement
    must go through ``conn.execute`` instead."""
    plan = _planned(conn.dialect, statement, params)
    if plan is None:
        return None
    adapted: AsyncAdapt_asyncpg_connection = conn.connection.dbapi_connection  # type: ignore[assignment]
    args: list[Any] | None = None
    try:
        args = plan.args(params)
        if _listened(conn):
            conn.dispatch.before_cursor_execute(conn, adapted.cursor(), plan.sql, args,
                                                None, False)
        return await _asyncpg_rows(conn, adapted, plan, args)
    except Exception as exc:
        # Wrapped as the engine wraps it; a lost connection invalidated, which closes
        # it: the pool's side of that may await, hence the greenlet.
        await greenlet_spawn(conn._handle_dbapi_exception, exc, plan.sql,
                             params if args is None else args, None, None)  # raises
        raise


async def _asyncpg_rows(conn: Connection, adapted: AsyncAdapt_asyncpg_connection,
                        plan: _Plan, args: list[Any]) -> Rows:
    """What SQLAlchemy's asyncpg cursor does for one statement
    (``AsyncAdapt_asyncpg_cursor._prepare_and_execute``), its errors translated to the
    DBAPI's as it translates them."""
    # The adapter's own methods are untyped: Any, here and in what they answer.
    own: Any = adapted
    dialect: Any = conn.dialect
    async with own._execute_mutex:
        if own._transaction is None and not plan.unbegun:
            await own._start_transaction()
        try:
            prepared, attributes = await own._prepare(
                plan.sql, dialect._invalidate_schema_cache_asof)
            fetched = await prepared.fetch(*args)
        except Exception as error:
            own._handle_exception(error)  # raises the DBAPI's error
        status = _STATUS.match(prepared.get_statusmsg() or "")
    types = [a.type.oid for a in attributes] if attributes else []
    return Rows(plan.made(fetched, types, dialect),
                int(status.group(1)) if status else -1)


# The execution option of a statement that may run before, and without, its transaction's
# BEGIN on PostgreSQL (``_Plan.unbegun``).
UNBEGUN = "stepup_unbegun"


def unbegun(db: AsyncSession) -> bool:
    """Whether ``db``'s open transaction is on asyncpg and has sent no BEGIN yet: what it
    ran so far ran outside any transaction (``UNBEGUN`` statements), and a statement sent
    now outside one is a transaction of its own."""
    conn = opened(db)
    if conn is None:
        return False
    adapted = conn.connection.dbapi_connection
    return isinstance(adapted, AsyncAdapt_asyncpg_connection) \
        and getattr(adapted, "_transaction", True) is None


# The row count in a command's status, as the adapter reads it.
_STATUS = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def opened(db: AsyncSession) -> Connection | None:
    """``db``'s connection if it has one in an active transaction: a statement may then
    run on it straight from a coroutine (``run`` on an inline SQLite connection, which
    never suspends; ``run_asyncpg``), without the hop into SQLAlchemy's greenlet
    (``AsyncSession.run_sync``, ~20 µs a statement) that the pool's checkout, which
    begins the session's transaction, must take. ``None`` otherwise."""
    tx = db.sync_session.get_transaction()
    if tx is None or not tx.is_active:
        return None
    for conn, *_ in tx._connections.values():
        if not conn.closed and not conn.invalidated:
            return conn
    return None


async def run_opened(conn: Connection, statement: Executable, params: dict[str, Any]
                     ) -> Rows | None:
    """``statement`` on ``conn`` (``opened``) without the greenlet: ``run`` on an inline
    SQLite connection, ``run_asyncpg`` on asyncpg's; ``None`` where neither applies."""
    adapted = conn.connection.dbapi_connection
    if isinstance(adapted, InlineAdaptedConnection):
        return run(conn, statement, params)
    if isinstance(adapted, AsyncAdapt_asyncpg_connection):
        return await run_asyncpg(conn, statement, params)
    return None


def open_inline(db: AsyncSession) -> Connection | None:
    """``opened``, if that connection is an inline SQLite one."""
    conn = opened(db)
    if conn is not None and isinstance(conn.connection.dbapi_connection,
                                       InlineAdaptedConnection):
        return conn
    return None


def _plan(statement: Executable, names: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    assert isinstance(compiled, SQLCompiler)
    if (any(not callable(p) for p in compiled._bind_processors.values())  # tuple binds
            or compiled.escaped_bind_names
            or any(bind.callable for bind in compiled.bind_names)
            or compiled.literal_execute_params or compiled.post_compile_params
            or compiled.insert_prefetch or compiled.update_prefetch
            or not compiled.positional or compiled.has_out_parameters):
        return None
    return _Plan(compiled, bool(statement.get_execution_options().get(UNBEGUN)))

