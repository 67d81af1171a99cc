"""A portal's users from creation to erasure (the integration API): read one, look one
up, list them, change the record, delete it, and read the user's security events.

Creating users is ``services/users.py``; acting on their methods is ``methods.py``. Every
function here trusts that the caller already knows the user belongs to its app (the web
layer answers 404 for anyone else's), except the lookups and the listing, which take the
app explicitly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.codes import check_pin
from stepup.domain.errors import EmailTaken, NotFound, UserConflict, ValidationFailed
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE, method_scope
from stepup.methods.base import protects_view
from stepup.services import audit, notifications
from stepup.services.accounts import LANGUAGES, normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu, user_or_not_found
from stepup.store import apps as apps_store
from stepup.store import audit as audit_store
from stepup.store import lifecycle as store
from stepup.store.models import AuditEvent, User

METHOD_SCOPE_PREFIX = method_scope("")


@dataclass(frozen=True)
class MethodSummary:
    type: str
    protects: dict[str, bool]


@dataclass(frozen=True)
class Locks:
    """The locks that hold now, each with the instant it ends."""

    account: datetime | None = None
    pin: datetime | None = None
    methods: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    """A user as the portal sees it: the record, the enabled methods and the locks."""

    user: User
    methods: list[MethodSummary]
    locks: Locks


async def _records(rt: Runtime, db: AsyncSession, users: list[User]) -> list[UserRecord]:
    ids = [u.id for u in users]
    methods: dict[str, list[MethodSummary]] = {i: [] for i in ids}
    for row in await store.enabled_methods(db, ids):
        methods[row.user_id].append(MethodSummary(row.type, protects_view(rt.settings, row)))
    locks: dict[str, dict[str, datetime]] = {i: {} for i in ids}
    for user_id, scope, until in await store.active_locks(db, ids, rt.clock.now()):
        locks[user_id][scope] = until
    out = []
    for u in users:
        held = locks[u.id]
        out.append(UserRecord(u, methods[u.id], Locks(
            account=held.get(ACCOUNT_SCOPE), pin=held.get(PIN_SCOPE),
            methods={s.removeprefix(METHOD_SCOPE_PREFIX): t for s, t in held.items()
                     if s.startswith(METHOD_SCOPE_PREFIX)})))
    return out


async def get(rt: Runtime, user_id: str) -> UserRecord:
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        return (await _records(rt, db, [user]))[0]


async def find(rt: Runtime, app_id: str, *, email: str | None = None,
               external_id: str | None = None) -> list[UserRecord]:
    """The app's user with this e-mail and/or external id (exact; both must match when
    both are given): none or one. Another app's users are never found."""
    email = normalise_email(email) if email is not None else None
    async with rt.db() as db:
        user = None
        if external_id is not None:
            user = await apps_store.user_by_external_id(db, app_id, external_id)
            if user is not None and email is not None and user.email != email:
                user = None
        elif email is not None:
            user = await apps_store.user_by_email(db, app_id, email)
        return await _records(rt, db, [user]) if user is not None else []


async def page(rt: Runtime, app_id: str, *, after: str | None, limit: int
               ) -> tuple[list[UserRecord], str | None]:
    """``limit`` of the app's users in id order after the id ``after``, and the id to
    continue after (None on the last page)."""
    async with rt.db() as db:
        users = list(await apps_store.users_page(db, app_id, after=after, limit=limit + 1))
        more = len(users) > limit
        users = users[:limit]
        return await _records(rt, db, users), users[-1].id if more else None


# --- changes ---------------------------------------------------------------------------


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
#: Changed fields in the order they are reported (names only: never the values).
FIELDS = ("email", "external_id", "language", "pin", "email_verified")


async def update(rt: Runtime, actor: Actor, user_id: str, *, email: str | _Keep = KEEP,
                 external_id: str | _Keep | None = KEEP, language: str | _Keep = KEEP,
                 pin: str | _Keep = KEEP, email_verified: bool | _Keep = KEEP
                 ) -> UserRecord:
    """Change the record; ``KEEP`` leaves a field as it is, ``external_id=None`` removes
    the external id. Audited with the names of the changed fields; a new e-mail is told
    to the old address and the new one (and is no longer verified), a new PIN to the
    user."""
    if email is not KEEP:
        email = normalise_email(email)
    if language is not KEEP and language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                               field="language")
    if external_id is not KEEP and external_id is not None and not external_id.strip():
        raise ValidationFailed("external_id must not be empty (null removes it).",
                               field="external_id")
    pin_hash = None
    if pin is not KEEP:
        check_pin(pin)
        # Slow by design: hashed before the write transaction opens.
        pin_hash = await run_cpu(rt.hasher.hash_password, pin)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id, for_update=True)
        changed: list[str] = []
        old_email = user.email
        if email is not KEEP and email != user.email:
            other = await apps_store.user_by_email(db, user.app_id, email)
            if other is not None and other.id != user.id:
                raise EmailTaken("Another user of this app has this e-mail address.",
                                 field="email")
            user.email, user.email_verified = email, False
            changed.append("email")
        if external_id is not KEEP and external_id != user.external_id:
            if external_id is not None:
                other = await apps_store.user_by_external_id(db, user.app_id, external_id)
                if other is not None and other.id != user.id:
                    raise UserConflict("Another user of this app has this external id.",
                                       field="external_id")
            user.external_id = external_id
            changed.append("external_id")
        if language is not KEEP and language != user.language:
            user.language = language
            changed.append("language")
        if pin_hash is not None:
            user.pin_hash = pin_hash
            changed.append("pin")
        if email_verified is not KEEP and email_verified != user.email_verified:
            # The portal vouches for the address (or no longer does): its users have no
            # StepUp page on which to follow a verification link.
            user.email_verified = email_verified
            changed.append("email_verified")
        if changed:
            await _flush_or_conflict(db, user, changed)
            await audit.record(db, rt.clock, actor, "account.updated", user.id,
                               fields=changed)
            if "email" in changed:
                await notifications.notify(rt, db, user, "account.email_changed",
                                           actor=actor, previous_email=old_email)
            if "pin" in changed:
                await notifications.notify(rt, db, user, "account.pin_changed", actor=actor)
        record = (await _records(rt, db, [user]))[0]
        await db.commit()
        return record


async def _flush_or_conflict(db: AsyncSession, user: User, changed: list[str]) -> None:
    """Write the change; a user who took the e-mail or external id meanwhile (the unique
    constraints per app) is answered as if they had been there before."""
    try:
        await db.flush()
    except IntegrityError as exc:
        await db.rollback()
        if "email" in changed and "external_id" not in changed:
            raise EmailTaken("Another user of this app has this e-mail address.",
                             field="email") from exc
        raise UserConflict("Another user of this app has this e-mail address or external "
                           "id.", field="external_id" if "email" not in changed else None
                           ) from exc


async def delete(rt: Runtime, actor: Actor, user_id: str) -> None:
    """Erase the user: the record and everything hanging off it (methods, passkeys,
    codes, destinations, sessions, operations, devices, queued notices, recovery
    requests). The audit events stay under the user's random id, which names nobody
    once the record is gone; ``account.deleted`` closes the account's chain, and the
    chain of events without an account records that chain's last hash, so the end of a
    deleted account's chain stays checkable."""
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id, for_update=True)
        await audit.record(db, rt.clock, actor, "account.deleted", user.id)
        head = await audit_store.last_hash(db, user.id)
        if not await store.erase_user(db, user.id):
            raise NotFound("No such user.")
        await audit.record(db, rt.clock, actor, "account.deleted", None, account=user.id,
                           head=head)
        await db.commit()


# --- reading the audit ------------------------------------------------------------------


async def events(rt: Runtime, user_id: str, *, limit: int, before_id: int | None
                 ) -> tuple[list[AuditEvent], int | None]:
    """The user's events newest first, and the id to continue before (None: no more)."""
    rows = await audit.events_of(rt, user_id, limit=limit + 1, before_id=before_id)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None
