"""Queries for the audit log and its hash chains (services/audit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from stepup.store import step_spends
from stepup.store.api_keys import Riding, riding
from stepup.store.db import of_transaction, write_turn
from stepup.store.driver import UNBEGUN, unbegun
from stepup.store.models import AuditEvent, Guard, Method, RateCounter, User
from stepup.store.models.records import ORIGIN_ROWS
from stepup.store.queries import core
from stepup.store.step_spends import RideRefused, StepSpend

# pg_advisory_xact_lock key of the chain of events with no account ("stepupau").
GLOBAL_CHAIN_LOCK = 0x7374657075706175


def _postgres(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "postgresql"


# Built on the tables, not the mapped classes: run as plain Core statements, past the
# ORM's execution path (see store/queries.py).
_users: Table = User.__table__  # type: ignore[assignment]
_events: Table = AuditEvent.__table__  # type: ignore[assignment]
_counters: Table = RateCounter.__table__  # type: ignore[assignment]
_methods: Table = Method.__table__  # type: ignore[assignment]
_guards: Table = Guard.__table__  # type: ignore[assignment]
_HEAD = select(_users.c.audit_head).where(_users.c.id == bindparam("user_id"))
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_SET_HEAD = (update(_users).where(_users.c.id == bindparam("user_id"))
             .values(audit_head=bindparam("head")))
_ADVANCE_HEAD = (update(_users)
                 .where(_users.c.id == bindparam("user_id"),
                        _users.c.audit_head.is_not_distinct_from(bindparam("prev_hash")))
                 .values(audit_head=bindparam("hash")))
_ADD = insert(_events)
# PostgreSQL: the compare-and-set and the event's INSERT in one statement (one round
# trip, not two): the INSERT takes its row from the UPDATE's RETURNING, so it inserts
# nothing when the compare fails.
_ADVANCED = _ADVANCE_HEAD.returning(_users.c.id).cte("advanced")
# Its parameters are named apart from the users' columns: a statement run with a
# parameter named after a column of the table it updates (``created_at``) would set it.
_EVENT_VALUES = ("actor", "event", "ip", "user_agent", "data", "created_at")
_ADD_ADVANCED = insert(_events).from_select(
    ["user_id", *_EVENT_VALUES, "prev_hash", "hash"],
    select(_ADVANCED.c.id,
           *(bindparam(f"event_{name}", type_=_events.c[name].type) for name in _EVENT_VALUES),
           bindparam("prev_hash", type_=_events.c.prev_hash.type),
           bindparam("hash", type_=_events.c.hash.type))
    .select_from(_ADVANCED))
_ADVANCE_AND_ADD = _ADD_ADVANCED.add_cte(_ADVANCED)
# And an API key's count with them (``add_advancing``'s ``last``), taking its row from
# the event's RETURNING: a statement's CTEs run in no order PostgreSQL promises, but one
# that reads another's rows runs after it, so the counter row is locked after the user
# row, as when the count ran at COMMIT (services/apikeys.py, ``held``), and not at all
# when the compare fails. It answers the counter's new value, or no row.
_ADDED = _ADD_ADVANCED.returning(_events.c.user_id).cte("added")
_COUNT_ADDED = postgresql.insert(_counters).from_select(
    ["key", "window_start", "count"],
    select(bindparam("counter", type_=_counters.c.key.type),
           bindparam("start", type_=_counters.c.window_start.type),
           bindparam("amount", type_=_counters.c.count.type)).select_from(_ADDED))
_ADVANCE_ADD_AND_COUNT = _COUNT_ADDED.on_conflict_do_update(
    index_elements=[_counters.c.key, _counters.c.window_start],
    set_={"count": _counters.c.count + _COUNT_ADDED.excluded.count},
).returning(_counters.c.count)


# PostgreSQL: a ridden TOTP step spent, the event added and the key counted by one call
# of migration 0015's function, sent outside any transaction (``spend_and_record``).
_SPEND_AND_RECORD = select(func.stepup_spend_and_record(
    bindparam("method_id", type_=_methods.c.id.type),
    bindparam("step", type_=_methods.c.last_step.type),
    bindparam("now", type_=_methods.c.last_used_at.type),
    bindparam("user_id", type_=_users.c.id.type),
    bindparam("scope_a", type_=_guards.c.scope.type),
    bindparam("scope_b", type_=_guards.c.scope.type),
    bindparam("prev_hash", type_=_events.c.prev_hash.type),
    bindparam("hash", type_=_events.c.hash.type),
    *(bindparam(f"event_{name}", type_=_events.c[name].type) for name in _EVENT_VALUES),
    bindparam("counter", type_=_counters.c.key.type),
    bindparam("start", type_=_counters.c.window_start.type),
    bindparam("limit", type_=_counters.c.count.type),
)).execution_options(**{UNBEGUN: True})
# Its errors for "nothing written" (the function's RAISE): the chain moved, over the rate.
_UNDONE = ("SU001", "SU002")


# The account's newest (ip, user agent) of the origin events since a date. The events
# are the SQL's constants, by the partial index's own condition (models'
# ``ix_audit_events_origins``): a planner uses a partial index only for a query whose
# own terms imply its condition, and a bound parameter implies nothing. Fixed SQL, so it
# runs on the driver's cursor (store/driver.py): through the engine, a login step's
# new-device check cost a tenth of the step.
_ORIGINS = (select(_events.c.ip, _events.c.user_agent)
            .where(_events.c.user_id == bindparam("user_id"),
                   ORIGIN_ROWS,
                   _events.c.created_at >= bindparam("since"))
            .order_by(_events.c.id.desc()).limit(bindparam("limit")))


async def lock_user_head(db: AsyncSession, user_id: str) -> tuple[bool, str | None]:
    """Lock the account's chain head until commit; (the account exists, its head).

    PostgreSQL: ``SELECT … FOR UPDATE`` on the user row, so events of one account are
    chained one after the other while other accounts go on in parallel. SQLite already
    runs one writer at a time (``BEGIN IMMEDIATE``; a read-first transaction takes its
    write lock here, ``store.db.write_turn``).
    """
    if _postgres(db):
        q = _HEAD_FOR_UPDATE
    else:
        q = _HEAD
        await write_turn(db)
    row = (await core(db, q, {"user_id": user_id})).first()
    of_transaction(db).setdefault(_TAKEN, set()).add(user_id)
    return (False, None) if row is None else (True, row[0])


def took_head(db: AsyncSession, user_id: str) -> bool:
    """Whether ``db``'s transaction holds ``user_id``'s chain head by ``lock_user_head``:
    taken after a compare-and-set of ``add_advancing`` found it moved, or without one.
    Every lock of a guard commits with an event of its account (a wrong code's, a wrong
    PIN's: services/verification.py), so a head that moved may mean a lock that a check
    read before did not see; from here to COMMIT no other event of the account, and so
    no lock, can commit."""
    return user_id in of_transaction(db).get(_TAKEN, ())


_TAKEN = "heads_taken"


async def set_user_head(db: AsyncSession, user_id: str, head: str) -> None:
    await core(db, _SET_HEAD, {"user_id": user_id, "head": head})


async def add_advancing(db: AsyncSession, user: User, row: dict[str, Any], *,
                        last: bool = False) -> bool:
    """Insert ``row`` (an event of ``user``'s chain: its columns but the id) and move the
    account's head from its ``prev_hash`` to its ``hash``, if the account's row holds
    ``prev_hash`` still; False, with nothing written, if it holds another (``user`` was
    read before an event of another transaction committed) or is gone.

    A compare-and-set UPDATE in place of ``lock_user_head``'s read and
    ``set_user_head``'s write: it locks the row until commit as the read's ``FOR UPDATE``
    does (SQLite's transaction holds the one write lock already), and on PostgreSQL an
    UPDATE that waited for another transaction's lock compares again with the row that
    transaction committed. On PostgreSQL the INSERT rides in the same statement.
    ``user`` then holds the new head, so the next event of the transaction finds it.

    ``last``: the transaction sends no statement of its own after this one before its
    COMMIT (what its session still holds is flushed at COMMIT: see
    ``services.audit.record_last``). On PostgreSQL an API key's call it still has to count
    (``store.api_keys.ride``) is then counted by this statement too, if the event is
    added: one round trip fewer, and the counter row held from here to COMMIT."""
    head = {"user_id": user.id, "prev_hash": row["prev_hash"], "hash": row["hash"]}
    spend = step_spends.take(db)
    if spend is not None:
        await _spend_and_record(db, spend, head, row, riding(db) if last else None)
    elif not _postgres(db):
        if int((await core(db, _ADVANCE_HEAD, head)).rowcount) != 1:
            return False
        await add(db, row)
    elif not await _advance_and_add(db, head, row, riding(db) if last else None):
        return False
    held_head(user, row["hash"])
    return True


async def _spend_and_record(db: AsyncSession, spend: StepSpend, head: dict[str, Any],
                            row: dict[str, Any], count: Riding | None) -> None:
    """``add_advancing`` with a ridden step (store/step_spends.py): the step spent, the
    event added and the key's call counted by one call, a transaction of its own, or
    ``RideRefused`` with nothing written."""
    if count is None or not unbegun(db):
        raise RideRefused  # not the transaction's one write: the ordinary way
    params = {**head, **{f"event_{name}": row[name] for name in _EVENT_VALUES},
              "method_id": spend.method_id, "step": spend.step, "now": spend.now,
              "scope_a": spend.scopes[0], "scope_b": spend.scopes[1],
              "counter": count.counter, "start": count.window_start, "limit": count.limit}
    try:
        used = (await core(db, _SPEND_AND_RECORD, params)).scalar_one()
    except DBAPIError as err:
        if getattr(err.orig, "sqlstate", None) in _UNDONE:
            raise RideRefused from None
        raise
    if used is None:  # a guard locked, or the step spent, since the read
        raise RideRefused
    count.used = int(used)


async def _advance_and_add(db: AsyncSession, head: dict[str, Any], row: dict[str, Any],
                           count: Riding | None) -> bool:
    """PostgreSQL's ``add_advancing``: one statement, which counts ``count`` as well."""
    params = {**head, **{f"event_{name}": row[name] for name in _EVENT_VALUES}}
    if count is None:
        return int((await core(db, _ADVANCE_AND_ADD, params)).rowcount) == 1
    params.update(counter=count.counter, start=count.window_start, amount=1)
    counted = (await core(db, _ADVANCE_ADD_AND_COUNT, params)).first()
    if counted is None:  # the compare failed: nothing written, nothing counted
        return False
    count.used = int(counted[0])
    return True


def held_head(user: User, head: str) -> None:
    """``user``'s object holds ``head`` as its chain head, as if read from its row (not a
    change of its own for the session to write)."""
    set_committed_value(user, "audit_head", head)


async def lock_global_chain(db: AsyncSession) -> None:
    if _postgres(db):
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": GLOBAL_CHAIN_LOCK})
    else:
        await write_turn(db)


async def lock_orphan_chain(db: AsyncSession, user_id: str) -> None:
    """Events of an account that no longer exists: no row to lock, so an advisory lock."""
    if _postgres(db):
        await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:u))"), {"u": user_id})
    else:
        await write_turn(db)


async def last_hash(db: AsyncSession, user_id: str | None) -> str | None:
    """The hash of the newest event of a chain (the global one for ``None``)."""
    who = AuditEvent.user_id.is_(None) if user_id is None else AuditEvent.user_id == user_id
    q = select(AuditEvent.hash).where(who).order_by(AuditEvent.id.desc()).limit(1)
    return (await db.execute(q)).scalar_one_or_none()


async def add(db: AsyncSession, row: dict[str, Any]) -> None:
    """Insert an event: ``row`` holds its columns (all but the id)."""
    # A Core INSERT on the table: the event is never read back in this session, and the
    # ORM's unit of work (or its bulk INSERT) for it cost as much as the rest of a
    # verification's audit.
    await core(db, _ADD, row)


async def stream_all(db: AsyncSession) -> AsyncIterator[AuditEvent]:
    """Every event in id order, a batch at a time."""
    result = await db.stream_scalars(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=500))
    async for row in result:
        yield row


async def heads(db: AsyncSession) -> dict[str, str | None]:
    rows = (await db.execute(select(User.id, User.audit_head))).all()
    return {r[0]: r[1] for r in rows}


async def search(db: AsyncSession, *, user_id: str | None = None, event: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 before_id: int | None = None, limit: int = 50) -> Sequence[AuditEvent]:
    """Events newest first, filtered; ``event`` ending in ``.`` or ``*`` is a prefix."""
    q = select(AuditEvent)
    if user_id is not None:
        q = q.where(AuditEvent.user_id == user_id)
    if event:
        if event.endswith(("*", ".")):
            prefix = event.rstrip("*")
            q = q.where(AuditEvent.event.startswith(prefix, autoescape=True))
        else:
            q = q.where(AuditEvent.event == event)
    if since is not None:
        q = q.where(AuditEvent.created_at >= since)
    if until is not None:
        q = q.where(AuditEvent.created_at < until)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    return (await db.execute(q.order_by(AuditEvent.id.desc()).limit(limit))).scalars().all()


async def origins_since(db: AsyncSession, user_id: str, since: datetime, limit: int = 1000
                        ) -> Sequence[tuple[str | None, str | None]]:
    """(ip, user_agent) of the account's newest ``ORIGIN_EVENTS`` since ``since``."""
    params = {"user_id": user_id, "since": since, "limit": limit}
    return [(r[0], r[1]) for r in (await core(db, _ORIGINS, params)).all()]
