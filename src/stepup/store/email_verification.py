"""Queries for verifying the account e-mail: its code is an ordinary challenge (channel
``email``), its link a challenge of the channel ``email-link`` — both under the purpose
``verify:email`` (services/email_verification.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import Challenge


async def get_link(db: AsyncSession, link_id: str, channel: str) -> Challenge | None:
    """The link's challenge row, read afresh (a racing request may just have spent it)."""
    row = await db.get(Challenge, link_id, populate_existing=True)
    return row if row is not None and row.channel == channel else None


async def retire_open(db: AsyncSession, user_id: str, channels: Iterable[str], purpose: str,
                      now: datetime) -> None:
    """Every open code and link for the purpose stops working (the address is verified:
    the other way of proving it must not be left alive)."""
    await db.execute(update(Challenge).where(
        Challenge.user_id == user_id, Challenge.channel.in_(list(channels)),
        Challenge.purpose == purpose, Challenge.used_at.is_(None)).values(used_at=now))


async def set_expiry(db: AsyncSession, challenge_id: str, expires_at: datetime) -> None:
    await db.execute(update(Challenge).where(Challenge.id == challenge_id)
                     .values(expires_at=expires_at))
