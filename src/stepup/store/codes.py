"""Queries for challenges (out-of-band codes and passkey requests), backup codes (their
count, their single use, and the set as a replay sees it), and the development outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import BackupCode, Challenge, OutboxMessage


async def latest_sent(db: AsyncSession, user_id: str, channel: str, purpose: str
                      ) -> Challenge | None:
    """The newest code sent on a channel for one purpose (for the resend cooldown)."""
    q = (select(Challenge).where(Challenge.user_id == user_id, Challenge.channel == channel,
                                 Challenge.purpose == purpose, Challenge.sent_at.is_not(None))
         .order_by(Challenge.created_at.desc()).limit(1))
    return (await db.execute(q)).scalar_one_or_none()


async def current(db: AsyncSession, user_id: str, channel: str, purpose: str
                  ) -> Challenge | None:
    """The live code for this purpose: sent, not used."""
    q = (select(Challenge).where(Challenge.user_id == user_id, Challenge.channel == channel,
                                 Challenge.purpose == purpose, Challenge.sent_at.is_not(None),
                                 Challenge.used_at.is_(None))
         .order_by(Challenge.created_at.desc()).limit(1))
    return (await db.execute(q)).scalar_one_or_none()


async def spent_latest(db: AsyncSession, user_id: str, channel: str, purpose: str
                       ) -> Challenge | None:
    """The newest code sent for this purpose, if a success spent it (a replay's match).

    Only the newest: an older code's ``used_at`` may say it was retired by a newer one,
    never accepted. Re-read from the database, not the session, because a racing
    request may just have spent it.
    """
    q = (select(Challenge).where(Challenge.user_id == user_id, Challenge.channel == channel,
                                 Challenge.purpose == purpose, Challenge.sent_at.is_not(None))
         .order_by(Challenge.created_at.desc()).limit(1)
         .execution_options(populate_existing=True))
    newest = (await db.execute(q)).scalar_one_or_none()
    return newest if newest is not None and newest.used_at is not None else None


async def recently_spent(db: AsyncSession, user_id: str, channel: str, purpose: str,
                         limit: int = 8) -> Sequence[Challenge]:
    """The challenges for this purpose spent most recently, newest first, even with newer
    ones open (passkeys: each page that shows opens a new request and retires the open
    one, so the answer accepted a moment ago, sent again, meets newer requests). Which
    one an answer belongs to, and whether it was accepted or only retired, is for the
    caller to prove (a passkey's answer must match, verify, and its use be recorded)."""
    q = (select(Challenge).where(Challenge.user_id == user_id, Challenge.channel == channel,
                                 Challenge.purpose == purpose, Challenge.used_at.is_not(None))
         .order_by(Challenge.used_at.desc()).limit(limit)
         .execution_options(populate_existing=True))
    return (await db.execute(q)).scalars().all()


async def mark_sent(db: AsyncSession, code_id: str, now: datetime) -> None:
    """The code is out: it replaces the previous live code for the same purpose, and
    its sealed destination is dropped (only the keyed hash stays, for comparisons).

    Retired only now, not when the new code is made: if delivery fails, the code the
    user already holds keeps working (nothing half-done).
    """
    code = await db.get(Challenge, code_id)
    if code is None:
        return
    await db.execute(update(Challenge).where(
        Challenge.user_id == code.user_id, Challenge.channel == code.channel,
        Challenge.purpose == code.purpose, Challenge.used_at.is_(None), Challenge.id != code_id,
    ).values(used_at=now))
    await db.execute(update(Challenge).where(Challenge.id == code_id).values(
        sent_at=now, destination_kid=None, destination_ct=None))


async def discard(db: AsyncSession, code_id: str) -> None:
    await db.execute(delete(Challenge).where(Challenge.id == code_id))


async def count_wrong_try(db: AsyncSession, code_id: str) -> None:
    await db.execute(update(Challenge).where(Challenge.id == code_id)
                     .values(attempts=Challenge.attempts + 1))


async def consume(db: AsyncSession, code_id: str, max_attempts: int, now: datetime) -> bool:
    """Spend the code: one winner, and never once it is dead from wrong tries."""
    res = await db.execute(update(Challenge).where(
        Challenge.id == code_id, Challenge.used_at.is_(None), Challenge.attempts < max_attempts,
    ).values(used_at=now))
    return int(getattr(res, "rowcount", 0)) == 1


async def backup_codes(db: AsyncSession, user_id: str) -> Sequence[BackupCode]:
    """Every code of the user's current set, used or not (a new set deletes the old), so
    that a code typed again is told apart from a wrong one."""
    q = select(BackupCode).where(BackupCode.user_id == user_id)
    return (await db.execute(q)).scalars().all()


async def count_unused_backup_codes(db: AsyncSession, user_id: str) -> int:
    q = select(func.count()).select_from(BackupCode).where(
        BackupCode.user_id == user_id, BackupCode.used_at.is_(None)
    )
    return int((await db.execute(q)).scalar_one())


async def consume_backup_code(db: AsyncSession, code_id: str, now: datetime) -> bool:
    """Spend one backup code: the one conditional UPDATE that makes it single use."""
    res = await db.execute(
        update(BackupCode)
        .where(BackupCode.id == code_id, BackupCode.used_at.is_(None))
        .values(used_at=now)
    )
    return int(getattr(res, "rowcount", 0)) == 1


async def delete_backup_codes(db: AsyncSession, user_id: str) -> None:
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))


async def add_outbox(db: AsyncSession, message: OutboxMessage) -> None:
    db.add(message)
    await db.flush()


async def outbox_for(db: AsyncSession, to: str | None, limit: int = 100
                     ) -> Sequence[OutboxMessage]:
    q = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if to:
        q = q.where(OutboxMessage.to == to)
    return (await db.execute(q)).scalars().all()
