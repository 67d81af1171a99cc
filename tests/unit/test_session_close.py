"""store/db.py's sessions: leaving ``async with`` gives the connection back and drops
what was not committed, whether or not a transaction is still open; a session whose
transaction ended closes there and then, without SQLAlchemy's shielded task and
greenlet (it holds no connection to give back). On SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.services import users
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import PORTAL_APP_ID, User


def _checked_out(rt: Runtime) -> int:
    count: int = rt.engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
    return count


async def _a_user(rt: Runtime) -> str:
    user, _ = await users.create_or_fetch(rt, Actor(name="test"), PORTAL_APP_ID,
                                          email="closing@example.com", external_id=None)
    return user.id


async def test_a_session_left_in_its_transaction_rolls_back_and_gives_the_connection_back(
        runtime: Runtime) -> None:
    user_id = await _a_user(runtime)
    before = _checked_out(runtime)
    async with runtime.sessionmaker() as db:
        await db.execute(update(User).where(User.id == user_id).values(language="ru"))
        assert db.in_transaction()
        assert _checked_out(runtime) == before + 1
    assert _checked_out(runtime) == before
    async with runtime.db() as db:
        language = (await db.execute(select(User.language).where(User.id == user_id))
                    ).scalar()
    assert language == "en"


async def test_a_session_whose_transaction_ended_closes_without_awaiting(
        runtime: Runtime) -> None:
    user_id = await _a_user(runtime)
    before = _checked_out(runtime)

    async def refused(_self: AsyncSession) -> None:
        raise AssertionError("closed through SQLAlchemy's task and greenlet")

    with pytest.MonkeyPatch.context() as patch:
        async with runtime.read_first() as db:
            user: Any = (await db.execute(select(User).where(User.id == user_id))).scalar()
            await db.execute(text("SELECT 1"))
            await db.commit()
            patch.setattr(AsyncSession, "close", refused)
        assert db.sync_session.identity_map.keys() == set()  # its objects forgotten
        assert user.id == user_id  # and still readable, detached
    assert _checked_out(runtime) == before
