"""Server-side sessions: only a SHA-256 of the random token is stored.

A session ends after ``session_idle_minutes`` without use or ``session_absolute_hours``
after it began, whichever comes first; a staff member's (a user of the app ``staff``)
after ``staff_session_idle_minutes`` or ``staff_session_hours``.

Each session opens the pages of its user's app only: ``resolve`` is told which app the
cookie or token it was handed belongs to, so a portal session never opens the support
console and a console session never opens the portal or the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import NotAuthenticated
from stepup.domain.hashing import new_id, new_token
from stepup.services.runtime import Actor, Runtime
from stepup.store import login_flows, queries
from stepup.store.models import PORTAL_APP_ID, STAFF_APP_ID, Session, User

# Writing last_seen on every request would serialise readers on SQLite for nothing.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass
class NewSession:
    token: str
    session_id: str
    expires_at: datetime


async def start(rt: Runtime, db: AsyncSession, user: User, actor: Actor) -> NewSession:
    new, values = _new(rt, user, actor)
    await login_flows.add_session(db, **values)
    return new


async def start_completing(rt: Runtime, db: AsyncSession, user: User, actor: Actor,
                           flow_id: str) -> NewSession | None:
    """``start``, spending the login flow ``flow_id`` with it (one statement on
    PostgreSQL): None, and no session, if the flow was spent already."""
    new, values = _new(rt, user, actor)
    if not await login_flows.consume_and_add_session(db, flow_id, rt.clock.now(), **values):
        return None
    return new


def _new(rt: Runtime, user: User, actor: Actor) -> tuple[NewSession, dict[str, Any]]:
    """A new session of ``user``'s and its row's values."""
    now = rt.clock.now()
    token = new_token()
    session_id = new_id()
    expires_at = now + timedelta(hours=_lifetimes(rt, user.app_id)[0])
    values = {"id": session_id, "token_hash": rt.hasher.token_hash(token),
              "user_id": user.id, "created_at": now, "last_seen_at": now,
              "expires_at": expires_at, "ip": actor.ip,
              "user_agent": (actor.user_agent or "")[:300] or None}
    return NewSession(token=token, session_id=session_id, expires_at=expires_at), values


def _lifetimes(rt: Runtime, app_id: str) -> tuple[int, int]:
    """(absolute hours, idle minutes) of a session of this app's user."""
    if app_id == STAFF_APP_ID:
        return rt.settings.staff_session_hours, rt.settings.staff_session_idle_minutes
    return rt.settings.session_absolute_hours, rt.settings.session_idle_minutes


@dataclass
class Authenticated:
    session: Session
    user: User


async def resolve(rt: Runtime, token: str, app_id: str = PORTAL_APP_ID) -> Authenticated:
    """The session and user behind a token, or ``NotAuthenticated``; a session of
    another app's user is no session here (``app_id``: whose pages are asking)."""
    async with rt.db() as db:
        row = await queries.get_session_by_hash(db, rt.hasher.token_hash(token))
        if row is None:
            raise NotAuthenticated()
        user = await queries.get_user(db, row.user_id)
        if user is None or user.app_id != app_id:
            raise NotAuthenticated()
        now = rt.clock.now()
        idle = timedelta(minutes=_lifetimes(rt, user.app_id)[1])
        if row.expires_at <= now or row.last_seen_at + idle <= now:
            await queries.delete_session(db, row.id)
            await db.commit()
            raise NotAuthenticated("Your session has expired: log in again.")
        if now - row.last_seen_at >= TOUCH_EVERY:
            await queries.touch_session(db, row.id, now)
            await db.commit()
        return Authenticated(session=row, user=user)


async def end(rt: Runtime, session_id: str) -> None:
    async with rt.db() as db:
        await queries.delete_session(db, session_id)
        await db.commit()
