"""Queries for the security notice queue (services/notifications.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.policy import MethodStatus
from stepup.store.models import Method, NotificationQueue


async def enabled_method(db: AsyncSession, user_id: str, method_type: str) -> Method | None:
    """The user's enabled method of this type: its destination (sealed) was verified, as
    a code reached it."""
    q = select(Method).where(Method.user_id == user_id, Method.type == method_type,
                             Method.status == MethodStatus.ENABLED)
    return (await db.execute(q)).scalar_one_or_none()


async def claim_due(db: AsyncSession, now: datetime, lease_until: datetime
                    ) -> NotificationQueue | None:
    """Take one due notice for this worker: the conditional UPDATE is the lock.

    Moving ``next_attempt_at`` to the end of the lease hides the row from other workers
    until then; a worker that dies mid-send leaves it to be retried when the lease ends.
    A worker that loses a race looks again (each statement sees what others committed).
    """
    for _attempt in range(10):
        q = (select(NotificationQueue).where(
            NotificationQueue.sent_at.is_(None), NotificationQueue.next_attempt_at.is_not(None),
            NotificationQueue.next_attempt_at <= now)
            .order_by(NotificationQueue.next_attempt_at, NotificationQueue.id).limit(1))
        row = (await db.execute(q.execution_options(populate_existing=True))
               ).scalar_one_or_none()
        if row is None:
            return None
        res = await db.execute(update(NotificationQueue).where(
            NotificationQueue.id == row.id,
            NotificationQueue.next_attempt_at == row.next_attempt_at,
            NotificationQueue.sent_at.is_(None),
        ).values(next_attempt_at=lease_until).execution_options(synchronize_session=False))
        if int(getattr(res, "rowcount", 0)) == 1:
            return row
    return None


async def get(db: AsyncSession, notice_id: str) -> NotificationQueue | None:
    return await db.get(NotificationQueue, notice_id, populate_existing=True)
