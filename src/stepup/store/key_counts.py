"""An API key's check and its call's count, as a verify on PostgreSQL runs them
(services/apikeys.py, ``held``): the key is read with what its current window has counted
so far, and the call is counted, and the key's last use recorded, by statements that run
inside the transaction's COMMIT (``store.db.last_in_commit``), so they are synchronous.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from stepup.store.loaded import plain
from stepup.store.models import ApiKey, RateCounter, User
from stepup.store.queries import RATE_HIT, TOUCH_KEY, core, core_now

# Built on the tables, run as plain Core statements (see store/queries.py).
_keys: Table = ApiKey.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_counters: Table = RateCounter.__table__  # type: ignore[assignment]
_P = bindparam

# The key, the app of the user the call is about (NULL: no such user) and the calls its
# counter holds in the window (NULL: none yet), in one query.
_KEY_OWNER_AND_USED = select(
    *_keys.c,
    select(_users.c.app_id).where(_users.c.id == _P("user_id")).scalar_subquery()
    .label("owner_app_id"),
    select(_counters.c.count)
    .where(_counters.c.key == _P("prefix", type_=String()) + _keys.c.id,
           _counters.c.window_start == _P("start"))
    .scalar_subquery().label("used"),
).where(_keys.c.key_hash == _P("hash"))


async def key_owner_and_used(db: AsyncSession, key_hash: bytes, user_id: str | None,
                             counter_prefix: str, window_start: datetime
                             ) -> tuple[ApiKey, str | None, int] | None:
    """The key with this hash (a plain object outside the session, as
    ``queries.get_api_key_and_owner`` makes it), the app of user ``user_id``, and the
    value of the key's counter ``counter_prefix + key id`` in the window: a read, no
    lock taken."""
    row = (await core(db, _KEY_OWNER_AND_USED,
                      {"hash": key_hash, "user_id": user_id, "prefix": counter_prefix,
                       "start": window_start})).first()
    if row is None:
        return None
    values = row._asdict()
    owner: str | None = values.pop("owner_app_id")
    used: int | None = values.pop("used")
    return plain(ApiKey, values), owner, used or 0


def count_now(session: OrmSession, counter: str, window_start: datetime) -> int:
    """``queries.rate_hit`` (add one, answer the new value) on the session's connection,
    from synchronous code (a ``before_commit`` hook)."""
    stmt = RATE_HIT[session.get_bind().dialect.name]
    params = {"counter": counter, "start": window_start, "amount": 1}
    return int(core_now(session, stmt, params).scalar_one())


def touch_now(session: OrmSession, key: ApiKey, now: datetime) -> None:
    """``queries.touch_api_key`` from synchronous code."""
    core_now(session, TOUCH_KEY, {"key_id": key.id, "now": now})
    set_committed_value(key, "last_used_at", now)
