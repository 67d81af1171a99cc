"""Devices: "login from a new device", and "remember this device".

Every successful login — on StepUp's pages, or a portal's headless verify that forwarded
its user's context — is audited as ``login.succeeded`` and told to the user when it
came from a device not seen lately (``login_succeeded``).

“Remember this device” is a token that skips the second factor of login only. Stored as
a SHA-256, valid ``remember_device_days``, bound to one user, revocable from the methods
page, and forgotten whenever any method of the user changes. It never skips a withdrawal
or any other operation: only ``login.password_step`` looks at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.agents import device_key
from stepup.domain.hashing import new_id, new_token
from stepup.services import audit, notifications
from stepup.services.runtime import Actor, Runtime
from stepup.store import audit as audit_store
from stepup.store import operations as store
from stepup.store.models import RememberedDevice, User


async def login_succeeded(rt: Runtime, db: AsyncSession, actor: Actor, user: User,
                          second_factor: str | None, *, last: bool = False,
                          **extra: Any) -> bool:
    """Audit a login, and tell the user when it came from a device not seen lately: a
    user agent (versions aside) and IP /24 (/64) pair that neither logged in to this
    account nor signed it up within ``new_device_days``. True when the device was new.

    One indexed query (the account's recent origins: its logins and sign-up,
    ``ORIGIN_EVENTS`` of store/models/records.py) besides the audit row itself.
    ``last``: the caller writes nothing more before it commits, so the audit row of a
    known device is written as the transaction's last write (``audit.record_last``)."""
    since = rt.clock.now() - timedelta(days=rt.settings.new_device_days)
    seen = {device_key(ua, ip) for ip, ua in
            await audit_store.origins_since(db, user.id, since)}
    new_device = device_key(actor.user_agent, actor.ip) not in seen
    if not new_device:
        record = audit.record_last if last else audit.record
        await record(db, rt.clock, actor, "login.succeeded", user,
                     second_factor=second_factor, **extra)
        return False
    await audit.record(db, rt.clock, actor, "login.succeeded", user,
                       second_factor=second_factor, **extra, new_device=True)
    await notifications.notify(rt, db, user, "login.new_device", actor=actor)
    return True


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
