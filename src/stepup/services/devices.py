"""“Remember this device”: a token that skips the second factor of login only.

Stored as a SHA-256, valid ``remember_device_days``, bound to one user, revocable from
the methods page, and forgotten whenever any method of the user changes. It never skips
a withdrawal or any other operation: only ``login.password_step`` looks at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.hashing import new_id, new_token
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import operations as store
from stepup.store.models import RememberedDevice, User


async def remember(rt: Runtime, db: AsyncSession, user: User, actor: Actor) -> str:
    token = new_token()
    now = rt.clock.now()
    db.add(RememberedDevice(id=new_id(), user_id=user.id, token_hash=rt.hasher.token_hash(token),
                            user_agent=(actor.user_agent or "")[:300] or None, created_at=now,
                            expires_at=now + timedelta(days=rt.settings.remember_device_days),
                            last_used_at=None))
    await audit.record(db, rt.clock, actor, "device.remembered", user.id)
    return token


async def recognised(rt: Runtime, db: AsyncSession, user: User, token: str | None) -> bool:
    """True when ``token`` is a live remembered device of this very user."""
    if not token:
        return False
    row = await store.device_by_hash(db, rt.hasher.token_hash(token))
    if row is None or row.user_id != user.id or row.expires_at <= rt.clock.now():
        return False
    row.last_used_at = rt.clock.now()
    return True


async def forget_all(rt: Runtime, db: AsyncSession, user_id: str, actor: Actor,
                     reason: str) -> None:
    if await store.forget_devices(db, user_id):
        await audit.record(db, rt.clock, actor, "device.forgotten", user_id, reason=reason)


async def list_devices(rt: Runtime, user_id: str) -> Sequence[RememberedDevice]:
    async with rt.db() as db:
        return await store.devices_of(db, user_id, rt.clock.now())


async def forget(rt: Runtime, actor: Actor, user_id: str, device_id: str | None) -> int:
    async with rt.db() as db:
        count = await store.forget_devices(db, user_id, device_id)
        if count:
            await audit.record(db, rt.clock, actor, "device.forgotten", user_id,
                               reason="user", device=device_id or "all")
        await db.commit()
        return count
