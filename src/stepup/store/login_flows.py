"""Login flows (a password that passed, waiting for its second factor) and the session a
completed one starts: the statements of a login step.

A login step reads its flow, the user, the guards of the check and the user's methods in
one query, and on PostgreSQL spends the flow and inserts the session in one statement:
each is one round trip where they were two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store import loaded
from stepup.store.models import LoginFlow, Method, Session, User
from stepup.store.queries import GUARD_WIDTH, GuardStates, core, guard_states, with_guards

_flows: Table = LoginFlow.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_methods: Table = Method.__table__  # type: ignore[assignment]
_sessions: Table = Session.__table__  # type: ignore[assignment]
_P = bindparam

_FLOW_BY_HASH = select(LoginFlow).where(LoginFlow.token_hash == _P("hash"))
_FLOW_AND_USER = (select(_flows, _users)
                  .outerjoin(_users, _users.c.id == _flows.c.user_id)
                  .where(_flows.c.token_hash == _P("hash")))


async def get_login_flow_by_hash(db: AsyncSession, token_hash: bytes) -> LoginFlow | None:
    return (await db.execute(_FLOW_BY_HASH, {"hash": token_hash})).scalar_one_or_none()


async def get_login_flow_and_user(db: AsyncSession, token_hash: bytes
                                  ) -> tuple[LoginFlow | None, User | None]:
    """The login flow with this hash and its user (None if gone), in one query (read as
    Core and made persistent in ``db``: store/loaded.py)."""
    row = (await core(db, _FLOW_AND_USER, {"hash": token_hash})).first()
    return loaded.pair(db, row, LoginFlow, User)


# The guards and the user's methods joined too: one row per method (oldest first, as
# ``queries.list_methods``), or one row with NULLs for a user with none.
_FLOW_USER_GUARDS_METHODS = (with_guards(_FLOW_AND_USER, _flows.c.user_id)
                             .add_columns(*_methods.c)
                             .outerjoin(_methods, _methods.c.user_id == _flows.c.user_id)
                             .order_by(_methods.c.created_at, _methods.c.type,
                                       _methods.c.id))
_FLOW_AND_USER_WIDTH = len(_flows.c) + len(_users.c)


async def get_login_flow_user_guards_and_methods(
        db: AsyncSession, token_hash: bytes, scopes: tuple[str, str]
) -> tuple[LoginFlow | None, User | None, GuardStates, list[Method]]:
    """The login flow with this token's hash, its user, the user's guards in ``scopes``
    (two distinct ones) as ``queries.get_guard_states`` reads them, and the user's
    methods as ``queries.list_methods`` reads them, in one query."""
    rows = (await core(db, _FLOW_USER_GUARDS_METHODS,
                       {"hash": token_hash, "scope_a": scopes[0], "scope_b": scopes[1]})
            ).all()
    if not rows:
        return None, None, {}, []
    head = _FLOW_AND_USER_WIDTH
    methods_at = head + GUARD_WIDTH  # where a row's method columns begin
    flow, user = loaded.pair(db, rows[0][:head], LoginFlow, User)
    if user is None:
        return flow, None, {}, []
    methods = (loaded.persistent(db, Method, row[methods_at:]) for row in rows)
    return (flow, user, guard_states(rows[0][:methods_at], scopes),
            [m for m in methods if m is not None])


_CONSUME_FLOW = (update(_flows)
                 .where(_flows.c.id == _P("flow_id"), _flows.c.used_at.is_(None))
                 .values(used_at=_P("now")))
_ADD_SESSION = insert(_sessions)
# PostgreSQL: the flow spent and the session inserted in one statement, the INSERT
# taking its row from the UPDATE's RETURNING, so it inserts nothing when the flow was
# spent already. The session's values are named apart from the flows' columns (a
# parameter named after a column of the table a statement updates would set it).
_CONSUMED = _CONSUME_FLOW.returning(_flows.c.id).cte("consumed")
_CONSUME_AND_ADD = (
    insert(_sessions)
    .from_select([c.name for c in _sessions.c],
                 select(*(_P(f"session_{c.name}", type_=c.type) for c in _sessions.c))
                 .select_from(_CONSUMED))
    .add_cte(_CONSUMED))


async def consume_login_flow(db: AsyncSession, flow_id: str, now: datetime) -> bool:
    """Spend the flow, once: False if it was spent already."""
    return int((await core(db, _CONSUME_FLOW, {"flow_id": flow_id, "now": now})
                ).rowcount) == 1


async def add_session(db: AsyncSession, **values: Any) -> None:
    await core(db, _ADD_SESSION, values)


async def consume_and_add_session(db: AsyncSession, flow_id: str, now: datetime,
                                  **values: Any) -> bool:
    """Spend the flow and insert the session (``values``: its columns) if the flow was
    not spent already; False, with nothing written, if it was. One statement on
    PostgreSQL; SQLite, whose CTEs cannot write, runs the two."""
    if db.get_bind().dialect.name == "postgresql":
        done = await core(db, _CONSUME_AND_ADD,
                          {"flow_id": flow_id, "now": now,
                           **{f"session_{name}": value for name, value in values.items()}})
        return int(done.rowcount) == 1
    if not await consume_login_flow(db, flow_id, now):
        return False
    await add_session(db, **values)
    return True
