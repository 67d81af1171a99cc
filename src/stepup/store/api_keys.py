"""The statements of API keys: their reads, their last use, and a call's count.

A call checks its key and counts it (services/apikeys.py). The read answers the key, the
app of the user the call is about, and on PostgreSQL what the key's current window has
counted so far; on PostgreSQL the call is then counted, and the key's last use recorded,
by statements that run inside the transaction's COMMIT (``store.db.last_in_commit``), so
those are synchronous (``count_now``, ``touch_now``) — unless the transaction's last write
counted the call on its way (``Riding``: a verification's audit event).

A verify also asks, with its key, for the first read of its check (``CheckRead``: the
user, their method and its guards, ``queries.USER_METHOD_GUARDS``): joined to the key's
read, it costs no statement of its own, and on PostgreSQL no round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, Table, bindparam, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from stepup.store.driver import UNBEGUN
from stepup.store.loaded import plain
from stepup.store.models import ApiKey, RateCounter, User
from stepup.store.queries import RATE_HIT, USER_METHOD_GUARDS, check_params, core, core_now

# Built on the tables, run as plain Core statements (see store/queries.py).
_keys: Table = ApiKey.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_counters: Table = RateCounter.__table__  # type: ignore[assignment]
_P = bindparam


@dataclass(frozen=True)
class CheckRead:
    """The first read of a login's check (``queries.get_user_method_and_guards``), asked
    for ahead of the check so that the key's read fetches it."""

    user_id: str
    method_type: str
    scopes: tuple[str, str]


@dataclass(frozen=True)
class ReadAhead:
    """A ``CheckRead``'s answer: the row of ``queries.USER_METHOD_GUARDS`` (its columns
    all NULL where there is no such user), for ``queries.user_method_and_guards``."""

    asked: CheckRead
    row: Sequence[Any]


@dataclass(frozen=True)
class KeyRead:
    """The key with a hash (a plain object outside the session: it is only read, and
    building it from the row skips the ORM's loading), the app of the user the call is
    about (``None``: no such user, or none named), the calls its counter holds in the
    current window (PostgreSQL's read; 0 for none yet) and the check read with it."""

    key: ApiKey
    owner: str | None
    used: int = 0
    ahead: ReadAhead | None = None


_KEY_NAMES = tuple(_keys.c.keys())  # the key's columns, first in every read below
_KEY_WIDTH = len(_KEY_NAMES)
_OWNER = (select(_users.c.app_id).where(_users.c.id == _P("user_id")).scalar_subquery()
          .label("owner_app_id"))
_USED = (select(_counters.c.count)
         .where(_counters.c.key == _P("prefix", type_=String()) + _keys.c.id,
                _counters.c.window_start == _P("start"))
         .scalar_subquery().label("used"))
_CHECK = USER_METHOD_GUARDS.subquery("check_read")


def _with_check(statement: Select[Any]) -> Select[Any]:
    """``statement`` (a read of the key by its hash) with ``CheckRead``'s row as its last
    columns: joined by an outer join on true, so a missing user leaves them NULL."""
    return statement.add_columns(*_CHECK.c).select_from(_keys.outerjoin(_CHECK, true()))


# SQLite's read: the key and the owner (the call is counted next, by ``queries.rate_hit``).
_KEY_AND_OWNER = select(*_keys.c, _OWNER).where(_keys.c.key_hash == _P("hash"))
# PostgreSQL's: also what the window has counted (the call is counted at COMMIT).
_KEY_OWNER_AND_USED = select(*_keys.c, _OWNER, _USED).where(_keys.c.key_hash == _P("hash"))
# Each read by (what the window has counted is read, the check is read with it). A plain
# read, the first statement of its call: on PostgreSQL it goes before the BEGIN, which
# then waits for the call's first write (store/driver.py, ``UNBEGUN``).
_READS = {key: read.execution_options(**{UNBEGUN: True}) for key, read in {
    (False, False): _KEY_AND_OWNER, (True, False): _KEY_OWNER_AND_USED,
    (False, True): _with_check(_KEY_AND_OWNER),
    (True, True): _with_check(_KEY_OWNER_AND_USED)}.items()}


async def read_key(db: AsyncSession, key_hash: bytes, user_id: str | None, *,
                   used_in: tuple[str, datetime] | None = None,
                   check: CheckRead | None = None) -> KeyRead | None:
    """The key with this hash (``None``: no such key), in one statement: a read, no lock
    taken. ``used_in``: the prefix of the key's counter (its key id follows) and the
    window whose count to read. ``check``: the check's read to fetch with it, for user
    ``user_id`` (``check.user_id`` must be that user)."""
    params: dict[str, Any] = {"hash": key_hash, "user_id": user_id}
    if used_in is not None:
        params["prefix"], params["start"] = used_in
    if check is not None:
        assert check.user_id == user_id, "a check's read is of the call's user"
        params.update(check_params(check.user_id, check.method_type, check.scopes))
    statement = _READS[used_in is not None, check is not None]
    row = (await core(db, statement, params)).first()
    if row is None:
        return None
    key = plain(ApiKey, dict(zip(_KEY_NAMES, row[:_KEY_WIDTH], strict=True)))
    owner: str | None = row[_KEY_WIDTH]
    rest = _KEY_WIDTH + 1  # past the owner: the count (if read), then the check (if read)
    used = 0
    if used_in is not None:
        used, rest = row[rest] or 0, rest + 1
    ahead = ReadAhead(check, row[rest:]) if check is not None else None
    return KeyRead(key, owner, used, ahead)


_KEY_BY_HASH = select(ApiKey).where(ApiKey.key_hash == _P("hash"))
TOUCH_KEY = update(_keys).where(_keys.c.id == _P("key_id")).values(last_used_at=_P("now"))


async def get_api_key_by_hash(db: AsyncSession, key_hash: bytes) -> ApiKey | None:
    return (await db.execute(_KEY_BY_HASH, {"hash": key_hash})).scalar_one_or_none()


async def touch_api_key(db: AsyncSession, key: ApiKey, now: datetime) -> None:
    await core(db, TOUCH_KEY, {"key_id": key.id, "now": now})
    set_committed_value(key, "last_used_at", now)


async def list_api_keys(db: AsyncSession) -> Sequence[ApiKey]:
    return (await db.execute(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))).scalars().all()


async def revoke_api_key(db: AsyncSession, key_id: str, now: datetime) -> bool:
    """Revoke an active key; False if there is none with this id."""
    res = await db.execute(update(ApiKey).where(ApiKey.id == key_id,
                                                ApiKey.revoked_at.is_(None))
                           .values(revoked_at=now))
    return int(getattr(res, "rowcount", 0)) == 1


# --- a call counted inside COMMIT (PostgreSQL) ---------------------------------------


@dataclass
class Riding:
    """A key's call still to be counted in the open transaction (its counter, the
    window), which the transaction's last write may count as it goes: the audit event of
    a verification (``store.audit.add_advancing``'s ``last``) then sets ``used``, the
    counter's new value, and its COMMIT counts nothing more."""

    counter: str
    window_start: datetime
    #: The key's rate: a write that counts the call refuses a count past it.
    limit: int
    #: The key's last use is recorded by this call's COMMIT too (once a minute): the
    #: count's write is then not the call's only one.
    touches: bool = False
    used: int | None = None


_RIDING = "stepup_riding_count"


def ride(db: AsyncSession, count: Riding) -> None:
    """``count`` is ``db``'s call to count, until ``unride``."""
    db.sync_session.info[_RIDING] = count


def unride(session: OrmSession) -> None:
    session.info.pop(_RIDING, None)


def riding(db: AsyncSession) -> Riding | None:
    """The call ``db``'s open transaction still has to count, if none of its statements
    counted it yet."""
    count: Riding | None = db.sync_session.info.get(_RIDING)
    return count if count is not None and count.used is None else None


def count_now(session: OrmSession, counter: str, window_start: datetime) -> int:
    """``queries.rate_hit`` (add one, answer the new value) on the session's connection,
    from synchronous code (a ``before_commit`` hook)."""
    stmt = RATE_HIT[session.get_bind().dialect.name]
    params = {"counter": counter, "start": window_start, "amount": 1}
    return int(core_now(session, stmt, params).scalar_one())


def touch_now(session: OrmSession, key: ApiKey, now: datetime) -> None:
    """``touch_api_key`` from synchronous code."""
    core_now(session, TOUCH_KEY, {"key_id": key.id, "now": now})
    set_committed_value(key, "last_used_at", now)
