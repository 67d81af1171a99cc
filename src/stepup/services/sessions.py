"""Server-side sessions: only a SHA-256 of the random token is stored.

A session ends after ``session_idle_minutes`` without use or ``session_absolute_hours``
after it began, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import NotAuthenticated
from stepup.domain.hashing import new_id, new_token
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import Session, User

# Writing last_seen on every request would serialise readers on SQLite for nothing.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass
class NewSession:
    token: str
    session_id: str
    expires_at: datetime


async def start(rt: Runtime, db: AsyncSession, user: User, actor: Actor) -> NewSession:
    now = rt.clock.now()
    token = new_token()
    session_id = new_id()
    expires_at = now + timedelta(hours=rt.settings.session_absolute_hours)
    await queries.add_session(db, id=session_id, token_hash=rt.hasher.token_hash(token),
                              user_id=user.id, created_at=now, last_seen_at=now,
                              expires_at=expires_at, ip=actor.ip,
                              user_agent=(actor.user_agent or "")[:300] or None)
    return NewSession(token=token, session_id=session_id, expires_at=expires_at)


@dataclass
class Authenticated:
    session: Session
    user: User


async def resolve(rt: Runtime, token: str) -> Authenticated:
    """The session and user behind a token, or ``NotAuthenticated``."""
    async with rt.db() as db:
        row = await queries.get_session_by_hash(db, rt.hasher.token_hash(token))
        if row is None:
            raise NotAuthenticated()
        now = rt.clock.now()
        idle = timedelta(minutes=rt.settings.session_idle_minutes)
        if row.expires_at <= now or row.last_seen_at + idle <= now:
            await queries.delete_session(db, row.id)
            await db.commit()
            raise NotAuthenticated("Your session has expired: log in again.")
        user = await queries.get_user(db, row.user_id)
        if user is None:
            raise NotAuthenticated()
        if now - row.last_seen_at >= TOUCH_EVERY:
            await queries.touch_session(db, row.id, now)
            await db.commit()
        return Authenticated(session=row, user=user)


async def end(rt: Runtime, session_id: str) -> None:
    async with rt.db() as db:
        await queries.delete_session(db, session_id)
        await db.commit()
