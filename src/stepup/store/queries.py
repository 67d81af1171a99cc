"""The queries the services and methods use. Nothing above the store writes SQL.

Every single-use guarantee is one conditional UPDATE here, so two racing requests
(threads, workers or hosts) can never both win: the database decides.

The statements of a verification are built once, with bound parameters (``_P``): a
statement object memoises its cache key, and building and keying a fresh statement on
every call was a tenth of a verification's time. Those that need no ORM object back are
built on the tables (``_table``), not the mapped classes: the session then runs them as
plain Core statements, while an ORM-enabled statement goes through the ORM's execution
path first (its bulk INSERT and UPDATE machinery, identity-map bookkeeping), which cost
two to four times the statement itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from stepup.domain.policy import MethodStatus
from stepup.store import driver, loaded
from stepup.store.db import write_turn
from stepup.store.models import (
    PORTAL_APP_ID,
    Guard,
    Method,
    Passkey,
    RateCounter,
    Session,
    User,
)

_P = bindparam  # a named parameter of a statement built once


async def core(db: AsyncSession, statement: Executable, params: dict[str, Any]) -> Any:
    """Run a Core statement (built on a table, once) on ``db``'s connection, in its
    transaction: on the driver's cursor where it compiles to fixed SQL (store/driver.py),
    else through the engine.

    ``db.execute`` would run it the same way, after the session's own layer (its ORM
    plugin lookup, execution options, events), which costs as much again as the
    engine's part for statements as small as these. Once the transaction is open (the
    pool's checkout done), the statement runs without the hop into SQLAlchemy's
    greenlet: at once on SQLite's inline connection, awaited on asyncpg's."""
    conn = driver.opened(db)
    if conn is not None:
        done = await driver.run_opened(conn, statement, params)
        if done is not None:
            return done
    return await db.run_sync(core_now, statement, params)


def core_now(session: OrmSession, statement: Executable, params: dict[str, Any]) -> Any:
    """``core`` from synchronous code (``run_sync``, or a ``before_commit`` hook such as
    store/api_keys.py's), on the session's connection."""
    conn = session.connection()
    done = driver.run(conn, statement, params)
    return conn.execute(statement, params) if done is None else done


def _table(model: Any) -> Table:
    """The table of a mapped class, for statements that skip the ORM."""
    table: Table = model.__table__
    return table


_users = _table(User)
_methods = _table(Method)
_guards = _table(Guard)

# --- users ---------------------------------------------------------------------------


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    return await db.get(User, user_id)


_USER_AND_METHOD = (select(_users, _methods)
                    .outerjoin(_methods, (_methods.c.user_id == _users.c.id)
                               & (_methods.c.type == _P("type")))
                    .where(_users.c.id == _P("user_id")))


async def get_user_and_method(db: AsyncSession, user_id: str, method_type: str
                              ) -> tuple[User | None, Method | None]:
    """The user and their method of this type, in one query (read as Core and made
    persistent in ``db``: store/loaded.py)."""
    row = (await core(db, _USER_AND_METHOD, {"user_id": user_id, "type": method_type})
           ).first()
    return loaded.pair(db, row, User, Method)


# --- guards read with the row that names their user ------------------------------------
#
# A check reads the account's guard and its method's (``get_guard_states``) just after
# reading the user: joined to that read instead, they cost no statement (and no round
# trip on PostgreSQL) of their own. Two outer joins on the guards' primary key
# (user_id, scope), each adding (failures, level, locked_until) or NULLs.

GuardStates = dict[str, tuple[int, int, datetime | None]]
_guard_a = _guards.alias("guard_a")
_guard_b = _guards.alias("guard_b")
_GUARD_COLUMNS = (_guard_a.c.failures, _guard_a.c.level, _guard_a.c.locked_until,
                  _guard_b.c.failures, _guard_b.c.level, _guard_b.c.locked_until)
GUARD_WIDTH = len(_GUARD_COLUMNS)  # the columns ``with_guards`` adds


def with_guards(statement: Any, user_id: Any) -> Any:
    """``statement`` with the guards of ``scope_a`` and ``scope_b`` of the user whose id
    is the column ``user_id`` as its six last columns (``guard_states``)."""
    return (statement.add_columns(*_GUARD_COLUMNS)
            .outerjoin(_guard_a, (_guard_a.c.user_id == user_id)
                       & (_guard_a.c.scope == _P("scope_a")))
            .outerjoin(_guard_b, (_guard_b.c.user_id == user_id)
                       & (_guard_b.c.scope == _P("scope_b"))))


def guard_states(row: Any, scopes: tuple[str, str]) -> GuardStates:
    """The guards of a ``with_guards`` row as ``get_guard_states`` answers them."""
    tail = row[-GUARD_WIDTH:]
    return {scope: (int(tail[i]), int(tail[i + 1]), tail[i + 2])
            for scope, i in zip(scopes, (0, 3), strict=True) if tail[i] is not None}


# Also read ahead, with the API key of a verify (store/api_keys.py, ``CheckRead``).
USER_METHOD_GUARDS = with_guards(_USER_AND_METHOD, _users.c.id)


def check_params(user_id: str, method_type: str, scopes: tuple[str, str]) -> dict[str, Any]:
    """The parameters of ``USER_METHOD_GUARDS``."""
    return {"user_id": user_id, "type": method_type, "scope_a": scopes[0],
            "scope_b": scopes[1]}


async def get_user_method_and_guards(db: AsyncSession, user_id: str, method_type: str,
                                     scopes: tuple[str, str]
                                     ) -> tuple[User | None, Method | None, GuardStates]:
    """``get_user_and_method`` and the user's guards in ``scopes`` (two distinct ones)
    as ``get_guard_states`` reads them, in one query."""
    row = (await core(db, USER_METHOD_GUARDS, check_params(user_id, method_type, scopes))
           ).first()
    return user_method_and_guards(db, row, scopes)


def user_method_and_guards(db: AsyncSession, row: Sequence[Any] | None,
                           scopes: tuple[str, str]
                           ) -> tuple[User | None, Method | None, GuardStates]:
    """What ``get_user_method_and_guards`` answers for a row of ``USER_METHOD_GUARDS``
    (``None``, or all NULL: no such user), the user and method persistent in ``db``."""
    if row is None:
        return None, None, {}
    user, method = loaded.pair(db, row[:-GUARD_WIDTH], User, Method)
    return user, method, guard_states(row, scopes)


_USER_BY_EMAIL = select(User).where(User.app_id == _P("app_id"), User.email == _P("email"))


async def get_user_by_email(db: AsyncSession, email: str, app_id: str = PORTAL_APP_ID
                            ) -> User | None:
    """The user with this e-mail in one app: by default StepUp's own pages' (``portal``),
    where people sign up and log in with a password."""
    return (await db.execute(_USER_BY_EMAIL, {"app_id": app_id, "email": email})
            ).scalar_one_or_none()


# --- sessions and login flows --------------------------------------------------------


async def get_session_by_hash(db: AsyncSession, token_hash: bytes) -> Session | None:
    q = select(Session).where(Session.token_hash == token_hash)
    return (await db.execute(q)).scalar_one_or_none()


async def delete_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(Session).where(Session.id == session_id))


async def touch_session(db: AsyncSession, session_id: str, now: datetime) -> None:
    await db.execute(update(Session).where(Session.id == session_id).values(last_seen_at=now))


# --- methods -------------------------------------------------------------------------


async def get_method(db: AsyncSession, user_id: str, method_type: str, *,
                     lock: bool = False) -> Method | None:
    """``lock``: hold the row until commit (PostgreSQL; SQLite's write transactions are
    serial already), so changes to what hangs off it cannot interleave."""
    q = select(Method).where(Method.user_id == user_id, Method.type == method_type)
    if lock:
        q = q.with_for_update()
        await write_turn(db)
    return (await db.execute(q)).scalar_one_or_none()


# Oldest first (the login step offers the first as its default). Ties broken by type,
# then id: PostgreSQL returns equal keys in whatever order its heap holds them, and an
# update moves a row's tuple, so created_at alone let the default change between reads.
_METHODS_OF = (select(_methods).where(_methods.c.user_id == _P("user_id"))
               .order_by(_methods.c.created_at, _methods.c.type, _methods.c.id))


async def list_methods(db: AsyncSession, user_id: str) -> Sequence[Method]:
    """A user's methods, oldest first (read as Core and made persistent in ``db``:
    store/loaded.py)."""
    rows = (await core(db, _METHODS_OF, {"user_id": user_id})).all()
    return [m for m in (loaded.persistent(db, Method, row) for row in rows) if m is not None]


async def count_enabled_methods(db: AsyncSession, user_id: str) -> int:
    q = select(func.count()).select_from(Method).where(
        Method.user_id == user_id, Method.status == MethodStatus.ENABLED
    )
    return int((await db.execute(q)).scalar_one())


async def delete_method(db: AsyncSession, method_id: str) -> None:
    await db.execute(delete(Method).where(Method.id == method_id))


_ADVANCE_STEP = (update(_methods)
                 .where(_methods.c.id == _P("method_id"),
                        _methods.c.last_step.is_(None) | (_methods.c.last_step < _P("step")))
                 .values(last_step=_P("step"), last_used_at=_P("now")))


async def advance_counter(db: AsyncSession, row: Method, step: int, now: datetime) -> bool:
    """Accept the TOTP time ``step`` only if no step at or after it was accepted before:
    one winner."""
    res = await core(db, _ADVANCE_STEP, {"method_id": row.id, "step": step, "now": now})
    if _rowcount(res) != 1:
        return False
    set_committed_value(row, "last_step", step)
    set_committed_value(row, "last_used_at", now)
    return True


# --- passkeys ------------------------------------------------------------------------


async def list_passkeys(db: AsyncSession, user_id: str) -> Sequence[Passkey]:
    q = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at,
                                                                   Passkey.name)
    return (await db.execute(q)).scalars().all()


async def rename_passkey(db: AsyncSession, user_id: str, passkey_id: str, name: str) -> bool:
    res = await db.execute(update(Passkey).where(Passkey.id == passkey_id,
                                                 Passkey.user_id == user_id)
                           .values(name=name).execution_options(synchronize_session=False))
    return _rowcount(res) == 1


async def delete_passkey(db: AsyncSession, passkey_id: str) -> None:
    await db.execute(delete(Passkey).where(Passkey.id == passkey_id))


async def delete_passkeys(db: AsyncSession, method_id: str) -> None:
    await db.execute(delete(Passkey).where(Passkey.method_id == method_id))


async def passkey_used(db: AsyncSession, passkey: Passkey, count: int, now: datetime) -> bool:
    """Record a use with signature counter ``count``: refused (False) unless it exceeds
    the stored one; a counter of 0 (authenticators that do not count) always passes."""
    q = update(Passkey).where(Passkey.id == passkey.id)
    if count:
        q = q.where(Passkey.sign_count < count)
    res = await db.execute(q.values(sign_count=count, last_used_at=now)
                           .execution_options(synchronize_session=False))
    if _rowcount(res) != 1:
        return False
    set_committed_value(passkey, "sign_count", count)
    set_committed_value(passkey, "last_used_at", now)
    return True


# --- guards (consecutive failures and locks) -----------------------------------------


# Two scopes at most (the account's and one more): fixed parameters, where an expanding
# IN would rewrite the statement's SQL on every call.
_GUARD_STATES = (select(_guards.c.scope, _guards.c.failures, _guards.c.level,
                        _guards.c.locked_until)
                 .where(_guards.c.user_id == _P("user_id"),
                        _guards.c.scope.in_([_P("scope_a"), _P("scope_b")])))


async def get_guard_states(db: AsyncSession, user_id: str, scopes: Sequence[str]
                           ) -> GuardStates:
    """(failures, level, locked_until) of the user's guards in ``scopes`` (one or two)
    that exist."""
    if not 1 <= len(scopes) <= 2:
        raise ValueError("one or two scopes")
    params = {"user_id": user_id, "scope_a": scopes[0], "scope_b": scopes[-1]}
    rows = (await core(db, _GUARD_STATES, params)).all()
    return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in rows}


async def add_guard_failure(db: AsyncSession, user_id: str, scope: str) -> tuple[int, int]:
    """Count one more consecutive failure atomically; returns (failures, level)."""
    ins = _insert(db, Guard).values(user_id=user_id, scope=scope, failures=1, level=0)
    stmt = ins.on_conflict_do_update(
        index_elements=[Guard.user_id, Guard.scope],
        set_={"failures": Guard.failures + 1},
    ).returning(Guard.failures, Guard.level)
    row = (await db.execute(stmt)).one()
    return int(row[0]), int(row[1])


async def lock_guard(db: AsyncSession, user_id: str, scope: str, until: datetime,
                     next_level: int) -> None:
    await db.execute(
        update(Guard)
        .where(Guard.user_id == user_id, Guard.scope == scope)
        .values(locked_until=until, failures=0, level=next_level)
    )


async def clear_guard(db: AsyncSession, user_id: str, scope: str, *, keep_level: bool = False,
                      unless_locked_at: datetime | None = None) -> None:
    """``unless_locked_at``: a success's clear, which leaves a lock that holds at that
    time alone. On PostgreSQL an UPDATE that waited for a racing failure's transaction
    compares again with the row it committed: a lock set meanwhile is kept, for the
    success's own check to find (``ratelimit.check_hold``), where a plain clear would
    have wiped it. An unlock (support's) clears whatever is there."""
    values: dict[str, Any] = {"failures": 0, "locked_until": None}
    if not keep_level:
        values["level"] = 0
    stmt = update(Guard).where(Guard.user_id == user_id, Guard.scope == scope)
    if unless_locked_at is not None:
        stmt = stmt.where(or_(Guard.locked_until.is_(None),
                              Guard.locked_until <= unless_locked_at))
    await db.execute(stmt.values(**values))


# --- rate counters -------------------------------------------------------------------


def _rate_hit(insert: Any) -> Any:
    counters = _table(RateCounter)
    ins = insert(counters).values(key=_P("counter"), window_start=_P("start"),
                                  count=_P("amount"))
    return ins.on_conflict_do_update(
        index_elements=[counters.c.key, counters.c.window_start],
        set_={"count": counters.c.count + ins.excluded.count},
    ).returning(counters.c.count)


RATE_HIT = {"postgresql": _rate_hit(postgresql.insert), "sqlite": _rate_hit(sqlite.insert)}


async def rate_hit(db: AsyncSession, key: str, window_start: datetime, amount: int = 1) -> int:
    """Add to a fixed-window counter and return its new value (atomic upsert)."""
    stmt = RATE_HIT[db.get_bind().dialect.name]
    params = {"counter": key, "start": window_start, "amount": amount}
    return int((await core(db, stmt, params)).scalar_one())


async def rate_value(db: AsyncSession, key: str, window_start: datetime) -> int:
    q = select(RateCounter.count).where(
        RateCounter.key == key, RateCounter.window_start == window_start
    )
    return int((await db.execute(q)).scalar_one_or_none() or 0)


async def rate_reset(db: AsyncSession, key: str) -> None:
    await db.execute(delete(RateCounter).where(RateCounter.key == key))


async def prune_rate_counters(db: AsyncSession, before: datetime) -> None:
    await db.execute(delete(RateCounter).where(RateCounter.window_start < before))


# --- helpers -------------------------------------------------------------------------


def _insert(db: AsyncSession, model: Any) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


async def rate_reset_prefix(db: AsyncSession, prefix: str) -> None:
    """Drop every window of every counter whose key starts with ``prefix``."""
    await db.execute(delete(RateCounter).where(RateCounter.key.startswith(prefix,
                                                                           autoescape=True)))
