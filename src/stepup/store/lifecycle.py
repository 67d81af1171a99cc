"""Queries for a portal's view of its users' whole lifecycle (services/lifecycle.py):
methods and locks of several users at once, and erasing a user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.policy import MethodStatus
from stepup.store.models import Guard, Method, NotificationQueue, RecoveryRequest, User


async def enabled_methods(db: AsyncSession, user_ids: Sequence[str]) -> Sequence[Method]:
    """The enabled methods of these users, in the order they were enabled."""
    if not user_ids:
        return []
    q = (select(Method).where(Method.user_id.in_(list(user_ids)),
                              Method.status == MethodStatus.ENABLED)
         .order_by(Method.user_id, Method.created_at, Method.type))
    return (await db.execute(q)).scalars().all()


async def active_locks(db: AsyncSession, user_ids: Sequence[str], now: datetime
                       ) -> Sequence[tuple[str, str, datetime]]:
    """(user id, scope, locked until) of the locks of these users that hold at ``now``."""
    if not user_ids:
        return []
    q = (select(Guard.user_id, Guard.scope, Guard.locked_until)
         .where(Guard.user_id.in_(list(user_ids)), Guard.locked_until.is_not(None),
                Guard.locked_until > now)
         .order_by(Guard.user_id, Guard.scope))
    return [(r[0], r[1], r[2]) for r in (await db.execute(q)).all() if r[2] is not None]


async def user_for_update(db: AsyncSession, user_id: str) -> User | None:
    """The user row, held until commit (PostgreSQL; SQLite's write transactions are
    serial already): a second delete or update waits and then sees the outcome."""
    q = select(User).where(User.id == user_id).with_for_update()
    return (await db.execute(q)).scalar_one_or_none()


async def erase_user(db: AsyncSession, user_id: str) -> bool:
    """Delete the user and everything that is theirs; False if there was no such user.

    Every table that references ``users`` does so ``ON DELETE CASCADE`` (methods,
    passkeys, backup and out-of-band codes, guards, sessions, login flows, operations,
    remembered devices, recovery requests); the notice queue names the user without a
    foreign key, so its rows go here. Recovery requests are deleted explicitly too, so
    nothing depends on the cascade being in place on an old schema.
    """
    await db.execute(delete(NotificationQueue).where(NotificationQueue.user_id == user_id)
                     .execution_options(synchronize_session=False))
    await db.execute(delete(RecoveryRequest).where(RecoveryRequest.user_id == user_id)
                     .execution_options(synchronize_session=False))
    res = await db.execute(delete(User).where(User.id == user_id)
                           .execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0)) == 1
