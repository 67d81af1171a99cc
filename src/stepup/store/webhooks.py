"""Queries for webhook deliveries (services/webhooks.py) and the operations whose expiry
they announce.

A delivery's state is read from two columns: ``delivered_at`` set means delivered;
otherwise ``next_attempt_at`` set means pending (due, leased or backing off) and unset
means failed (given up after the last attempt).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import Operation, WebhookDelivery

STATUSES = ("pending", "delivered", "failed")
# The states an operation leaves when it expires unconfirmed (services/operations.py).
OPEN_OPERATION = ("pin_required", "code_required")


def _status_is(status: str) -> ColumnElement[bool]:
    d = WebhookDelivery
    if status == "delivered":
        return d.delivered_at.is_not(None)
    if status == "failed":
        return and_(d.delivered_at.is_(None), d.next_attempt_at.is_(None))
    return and_(d.delivered_at.is_(None), d.next_attempt_at.is_not(None))


def status_of(row: WebhookDelivery) -> str:
    if row.delivered_at is not None:
        return "delivered"
    return "pending" if row.next_attempt_at is not None else "failed"


async def claim_due(db: AsyncSession, now: datetime, lease_until: datetime
                    ) -> WebhookDelivery | None:
    """Take one due delivery for this worker: the conditional UPDATE is the lock.

    The lease hides the row from other workers until it ends (a worker that dies
    mid-send leaves it to be retried then); a worker that loses a race looks again.
    """
    for _attempt in range(10):
        q = (select(WebhookDelivery).where(_status_is("pending"),
                                           WebhookDelivery.next_attempt_at <= now)
             .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(1))
        row = (await db.execute(q.execution_options(populate_existing=True))
               ).scalar_one_or_none()
        if row is None:
            return None
        res = await db.execute(update(WebhookDelivery).where(
            WebhookDelivery.id == row.id,
            WebhookDelivery.next_attempt_at == row.next_attempt_at,
            WebhookDelivery.delivered_at.is_(None),
        ).values(next_attempt_at=lease_until).execution_options(synchronize_session=False))
        if int(getattr(res, "rowcount", 0)) == 1:
            return row
    return None


async def get(db: AsyncSession, delivery_id: str) -> WebhookDelivery | None:
    return await db.get(WebhookDelivery, delivery_id, populate_existing=True)


async def page(db: AsyncSession, app_id: str, *, status: str | None,
               before: tuple[datetime, str] | None, limit: int) -> Sequence[WebhookDelivery]:
    """The app's deliveries, newest first, ``limit`` of them after the cursor ``before``
    (the created_at and id of the last one seen)."""
    d = WebhookDelivery
    q = select(d).where(d.app_id == app_id)
    if status is not None:
        q = q.where(_status_is(status))
    if before is not None:
        at, last_id = before
        q = q.where(or_(d.created_at < at, and_(d.created_at == at, d.id < last_id)))
    q = q.order_by(d.created_at.desc(), d.id.desc()).limit(limit)
    return (await db.execute(q)).scalars().all()


async def reset(db: AsyncSession, delivery_id: str, now: datetime) -> bool:
    """Make a delivery pending and due now, with its attempts counted afresh."""
    res = await db.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                           .values(delivered_at=None, next_attempt_at=now, attempts=0,
                                   last_error=None)
                           .execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0)) == 1


async def expired_operations(db: AsyncSession, now: datetime, limit: int
                             ) -> Sequence[Operation]:
    """Operations past their expiry and still waiting for a PIN or a code."""
    q = (select(Operation).where(Operation.status.in_(OPEN_OPERATION),
                                 Operation.expires_at <= now)
         .order_by(Operation.expires_at, Operation.id).limit(limit))
    return (await db.execute(q)).scalars().all()


async def mark_expired(db: AsyncSession, op: Operation, now: datetime) -> bool:
    """Move the operation to ``expired`` only from the state we saw and only once it is
    past its expiry: exactly one worker wins, and a confirmation that committed first
    keeps the operation confirmed."""
    res = await db.execute(update(Operation).where(
        Operation.id == op.id, Operation.status == op.status, Operation.expires_at <= now,
    ).values(status="expired").execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0)) == 1
