"""Queries for the security notice queue (services/notifications.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.hashing import new_id
from stepup.domain.policy import MethodStatus
from stepup.domain.sealing import DestinationSeal
from stepup.store.models import Method, NotificationQueue
from stepup.store.queries import core


async def enabled_method(db: AsyncSession, user_id: str, method_type: str) -> Method | None:
    """The user's enabled method of this type: its destination (sealed) was verified, as
    a code reached it."""
    q = select(Method).where(Method.user_id == user_id, Method.type == method_type,
                             Method.status == MethodStatus.ENABLED)
    return (await db.execute(q)).scalar_one_or_none()


async def claim_due(db: AsyncSession, now: datetime, lease_until: datetime, limit: int = 1
                    ) -> list[NotificationQueue]:
    """Take up to ``limit`` due notices for this worker: the conditional UPDATE is the lock.

    Moving ``next_attempt_at`` to the end of the lease hides a row from other workers
    until then; a worker that dies mid-send leaves it to be retried when the lease ends.
    A worker that loses every race looks again (each statement sees what others
    committed); one that wins some keeps those.
    """
    for _attempt in range(10):
        q = (select(NotificationQueue).where(
            NotificationQueue.sent_at.is_(None), NotificationQueue.next_attempt_at.is_not(None),
            NotificationQueue.next_attempt_at <= now)
            .order_by(NotificationQueue.next_attempt_at, NotificationQueue.id).limit(limit))
        rows = (await db.execute(q.execution_options(populate_existing=True))).scalars().all()
        if not rows:
            return []
        won = []
        for row in rows:
            res = await db.execute(update(NotificationQueue).where(
                NotificationQueue.id == row.id,
                NotificationQueue.next_attempt_at == row.next_attempt_at,
                NotificationQueue.sent_at.is_(None),
            ).values(next_attempt_at=lease_until).execution_options(synchronize_session=False))
            if int(getattr(res, "rowcount", 0)) == 1:
                won.append(row)
        if won:
            return won
    return []


async def get_many(db: AsyncSession, ids: list[str]) -> dict[str, NotificationQueue]:
    q = select(NotificationQueue).where(NotificationQueue.id.in_(ids))
    rows = (await db.execute(q.execution_options(populate_existing=True))).scalars().all()
    return {row.id: row for row in rows}


async def give_back(db: AsyncSession, ids: list[str], lease_until: datetime,
                    now: datetime) -> None:
    """Make claimed notices that were not tried due again, if this claim still holds."""
    await db.execute(update(NotificationQueue).where(
        NotificationQueue.id.in_(ids), NotificationQueue.next_attempt_at == lease_until,
        NotificationQueue.sent_at.is_(None),
    ).values(next_attempt_at=now).execution_options(synchronize_session=False))


# Every column named: the row is written as it is built, not through the ORM's flush
# (which cost a login step from a new device a sixth of its instructions, for one row).
_NOTICES: Table = NotificationQueue.__table__  # type: ignore[assignment]
_INSERT = insert(_NOTICES).values({c.name: bindparam(c.name) for c in _NOTICES.c})


async def enqueue(db: AsyncSession, seal: DestinationSeal, now: datetime, *,
                  user_id: str | None, kind: str, channel: str, to: str, language: str,
                  data: dict[str, Any]) -> None:
    """A notice due now, its recipient sealed for the row, written in ``db``'s
    transaction (it exists exactly when the caller's change commits)."""
    notice_id = new_id()
    kid, ciphertext = seal.seal(NotificationQueue.__tablename__, notice_id, to)
    await core(db, _INSERT, {
        "id": notice_id, "user_id": user_id, "kind": kind, "channel": channel,
        "destination_kid": kid, "destination_ct": ciphertext, "language": language,
        "data": data, "created_at": now, "attempts": 0, "next_attempt_at": now,
        "sent_at": None, "last_error": None})
