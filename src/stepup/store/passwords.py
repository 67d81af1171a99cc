"""Queries for changing and resetting passwords (services/account_security.py): the
reset links, and ending a user's sessions and unfinished logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import LoginFlow, PasswordReset, Session


async def reset_by_hash(db: AsyncSession, token_hash: bytes) -> PasswordReset | None:
    q = select(PasswordReset).where(PasswordReset.token_hash == token_hash)
    return (await db.execute(q)).scalar_one_or_none()


async def use_reset(db: AsyncSession, reset_id: str, now: datetime) -> bool:
    """Spend the link: one conditional UPDATE, so two racing submits never both pass."""
    res = await db.execute(update(PasswordReset)
                           .where(PasswordReset.id == reset_id, PasswordReset.used_at.is_(None),
                                  PasswordReset.expires_at > now)
                           .values(used_at=now).execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0)) == 1


async def spend_resets(db: AsyncSession, user_id: str, now: datetime) -> int:
    """Every unused link of the user stops working (a newer link, a new password)."""
    res = await db.execute(update(PasswordReset)
                           .where(PasswordReset.user_id == user_id,
                                  PasswordReset.used_at.is_(None))
                           .values(used_at=now).execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0))


async def prune_resets(db: AsyncSession, before: datetime) -> None:
    """Links expired before ``before`` serve nothing any more."""
    await db.execute(delete(PasswordReset).where(PasswordReset.expires_at < before)
                     .execution_options(synchronize_session=False))


async def end_sessions(db: AsyncSession, user_id: str, *, keep: str | None = None) -> int:
    """End the user's sessions (all but ``keep``) and their logins waiting for a second
    factor; answers how many sessions ended."""
    q = delete(Session).where(Session.user_id == user_id)
    if keep is not None:
        q = q.where(Session.id != keep)
    res = await db.execute(q.execution_options(synchronize_session=False))
    await db.execute(delete(LoginFlow).where(LoginFlow.user_id == user_id)
                     .execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0))
