"""Queries for operations, receipt keys and remembered devices (webhook deliveries:
store/webhooks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import Operation, ReceiptKey, RememberedDevice

# --- operations ----------------------------------------------------------------------


async def get_operation(db: AsyncSession, operation_id: str) -> Operation | None:
    return await db.get(Operation, operation_id, populate_existing=True)


async def set_status(db: AsyncSession, operation_id: str, *, from_status: str,
                     to_status: str, **values: object) -> bool:
    """Move an operation on only from the state we saw: one winner under races."""
    res = await db.execute(update(Operation).where(
        Operation.id == operation_id, Operation.status == from_status,
    ).values(status=to_status, **values))
    return int(getattr(res, "rowcount", 0)) == 1


async def operation_types(db: AsyncSession, user_id: str, operation_ids: Sequence[str]
                          ) -> dict[str, str]:
    """The type of each of these operations of the user (the activity page names them)."""
    if not operation_ids:
        return {}
    rows = await db.execute(select(Operation.id, Operation.type).where(
        Operation.user_id == user_id, Operation.id.in_(set(operation_ids))))
    return {op_id: op_type for op_id, op_type in rows}


# --- receipt keys --------------------------------------------------------------------


async def active_receipt_key(db: AsyncSession) -> ReceiptKey | None:
    q = (select(ReceiptKey).where(ReceiptKey.active.is_(True), ReceiptKey.retired_at.is_(None))
         .order_by(ReceiptKey.created_at.desc()).limit(1))
    return (await db.execute(q)).scalar_one_or_none()


async def published_receipt_keys(db: AsyncSession) -> Sequence[ReceiptKey]:
    q = (select(ReceiptKey).where(ReceiptKey.retired_at.is_(None))
         .order_by(ReceiptKey.created_at.desc()))
    return (await db.execute(q)).scalars().all()


async def deactivate_receipt_keys(db: AsyncSession) -> None:
    await db.execute(update(ReceiptKey).values(active=False))


async def retire_receipt_key(db: AsyncSession, kid: str, now: datetime) -> bool:
    res = await db.execute(update(ReceiptKey).where(
        ReceiptKey.kid == kid, ReceiptKey.retired_at.is_(None), ReceiptKey.active.is_(False),
    ).values(retired_at=now))
    return int(getattr(res, "rowcount", 0)) == 1


# --- remembered devices --------------------------------------------------------------


async def device_by_hash(db: AsyncSession, token_hash: bytes) -> RememberedDevice | None:
    q = select(RememberedDevice).where(RememberedDevice.token_hash == token_hash)
    return (await db.execute(q)).scalar_one_or_none()


async def devices_of(db: AsyncSession, user_id: str, now: datetime
                     ) -> Sequence[RememberedDevice]:
    q = (select(RememberedDevice).where(RememberedDevice.user_id == user_id,
                                        RememberedDevice.expires_at > now)
         .order_by(RememberedDevice.created_at.desc()))
    return (await db.execute(q)).scalars().all()


async def forget_devices(db: AsyncSession, user_id: str, device_id: str | None = None) -> int:
    q = delete(RememberedDevice).where(RememberedDevice.user_id == user_id)
    if device_id is not None:
        q = q.where(RememberedDevice.id == device_id)
    res = await db.execute(q)
    return int(getattr(res, "rowcount", 0))
