"""Filing a lock-out recovery request (seed 004, option 2), and the link that cancels it.

A request reaches StepUp two ways, and both file exactly the same request (``_file``):

- on StepUp's own pages, by a user whose password is proven at the second-factor step
  of login (``file_request``, with the open login token);
- from a portal, through the integration API, after the portal's own identity check of
  a user who has no StepUp password at all (``file_for_user``).

Either way the request waits for support's identity checks and a second pair of eyes
(``services/recovery.py``), every verified contact is told at once with a link that
cancels it, and the row and the audit event say which way it came (``via``).

Since every filing tells every contact, one cannot be repeated at will: one open request
per account, and after a request is cancelled or rejected a new one waits
``RECOVERY_COOLDOWN_HOURS`` (``recovery_cooldown``, with ``retry_after``). A completed
request starts no wait: the reset happened, and a user locked out again later must be
able to ask at once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.destinations import check_call_number
from stepup.domain.errors import (
    NotAuthenticated,
    NotFound,
    RecoveryAlreadyOpen,
    RecoveryCooldown,
    ValidationFailed,
)
from stepup.domain.hashing import new_id
from stepup.services import audit, notifications
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.store import login_flows, queries
from stepup.store import recovery as store
from stepup.store.models import RecoveryRequest, User

CONTACT_CHANNELS = ("email", "phone")
DESCRIPTION_MIN, DESCRIPTION_MAX = 10, 2000
PHONE_MAX, BEST_TIME_MAX = 40, 200
# How a request was filed, kept in its ``contact`` and in its audit event.
VIA_PAGES, VIA_API = "pages", "api"


# --- the cancel link ---------------------------------------------------------------------


def cancel_token(rt: Runtime, request_id: str) -> str:
    """``<request id>.<HMAC>``: only the server can make one; it names one request."""
    return f"{request_id}.{rt.hasher.mac('recovery-cancel', request_id)}"


def cancel_url(rt: Runtime, request_id: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/recovery/cancel/{cancel_token(rt, request_id)}"


def request_id_from(rt: Runtime, token: str) -> str | None:
    """The request a cancel token names, or None for a forged or mangled token."""
    request_id, dot, mac = token.partition(".")
    if not dot or not request_id or len(request_id) > 32 or not request_id.isalnum():
        return None
    return request_id if rt.hasher.mac_ok(mac, "recovery-cancel", request_id) else None


# --- what the user tells support -----------------------------------------------------------


def clean_description(text: str, minimum: int = DESCRIPTION_MIN) -> str:
    description = (text or "").strip()
    if len(description) < max(minimum, 1):
        raise ValidationFailed(situation="recovery_description", field="description",
                               values={"min": max(minimum, 1)})
    if len(description) > DESCRIPTION_MAX:
        raise ValidationFailed(situation="recovery_description_long", field="description",
                               values={"max": DESCRIPTION_MAX})
    return description


def clean_contact(contact: dict[str, Any], default_region: str | None = None
                  ) -> dict[str, Any]:
    """How support should contact the user: ``{channel, phone, best_time}``.

    Support calls the number back, so any line will do (not only a mobile), kept in
    whatever form the user wrote it; but it must be a number that exists, and a refusal
    says why as the set-up's does (too short, unknown country code, …). A number without
    its country code is read in ``default_region`` (STEPUP_DEFAULT_PHONE_REGION), if
    any."""
    channel = str(contact.get("channel") or "email")
    if channel not in CONTACT_CHANNELS:
        raise ValidationFailed(situation="recovery_channel", field="channel")
    phone = " ".join(str(contact.get("phone") or "").split())
    if channel == "phone" and not phone:
        raise ValidationFailed(situation="recovery_phone", field="phone")
    if len(phone) > PHONE_MAX:
        raise ValidationFailed(situation="phone_long", field="phone")
    if phone:
        check_call_number(phone, default_region=default_region)
    best_time = str(contact.get("best_time") or "").strip()[:BEST_TIME_MAX]
    return {"channel": channel, "phone": phone or None, "best_time": best_time or None}


# --- filing --------------------------------------------------------------------------------


async def _flow_user(rt: Runtime, db: AsyncSession, login_token: str) -> User:
    """The user whose password this login token proves (still open, not expired)."""
    flow = await login_flows.get_login_flow_by_hash(db, rt.hasher.token_hash(login_token))
    if flow is None or flow.used_at is not None or flow.expires_at <= rt.clock.now():
        raise NotAuthenticated("This login attempt has expired: log in again.")
    user = await queries.get_user(db, flow.user_id)
    if user is None:
        raise NotAuthenticated()
    return user


FindUser = Callable[[AsyncSession], Awaitable[User]]

# A request closed this way makes the next one wait; a completed one does not.
_COOLDOWN_STATUSES = ("cancelled", "rejected")


async def _cooldown_left(rt: Runtime, db: AsyncSession, user_id: str) -> int:
    """Seconds until this account may file again after a cancelled or rejected request
    (0: it may now). The latest requests suffice: a new one needs the last one closed."""
    hours = rt.settings.recovery_cooldown_hours
    if hours <= 0:
        return 0
    closed = [row.cancelled_at if row.status == "cancelled" else row.decided_at
              for row in await store.requests_of(db, user_id, limit=3)
              if row.status in _COOLDOWN_STATUSES]
    last = max((when for when in closed if when is not None), default=None)
    if last is None:
        return 0
    left = (last + timedelta(hours=hours) - rt.clock.now()).total_seconds()
    return max(0, math.ceil(left))


def _refuse_during_cooldown(seconds: int) -> RecoveryCooldown:
    hours = -(-seconds // 3600)
    when = f"{hours} hour{'s' if hours != 1 else ''}"
    return RecoveryCooldown(
        "A recovery request for this account was cancelled or rejected lately: a new one "
        f"can be filed in about {when}.", retry_after=seconds)


async def _file(rt: Runtime, actor: Actor, find_user: FindUser, description: str,
                contact: dict[str, Any], via: str) -> RecoveryRequest:
    """The one way a request is filed: one open request per account, none during the
    cooldown after a cancelled or rejected one, the notices to every verified contact
    with the cancel link, and the audit event — one transaction. A refusal tells no
    one."""
    filed: dict[str, Any] = {"via": via}
    if via == VIA_API:  # which portal (and which of its keys) filed it, for support
        filed.update(by=actor.name, app=actor.app_id)
    async with rt.db() as db:
        user = await find_user(db)
        await store.lock_user(db, user.id)
        if await store.open_request_of(db, user.id) is not None:
            raise RecoveryAlreadyOpen("A recovery request for this account is already open. "
                                      "Support will contact you.")
        wait = await _cooldown_left(rt, db, user.id)
        if wait:
            raise _refuse_during_cooldown(wait)
        row = RecoveryRequest(id=new_id(), user_id=user.id, status="requested",
                              description=description, contact={**contact, **filed},
                              created_at=rt.clock.now(), ip=actor.ip, checks={},
                              checked_by=None, checked_at=None, decided_by=None,
                              decided_at=None, decision_note=None, effective_at=None,
                              completed_at=None, cancelled_at=None, cancelled_by=None)
        db.add(row)
        await db.flush()
        await audit.record(db, rt.clock, actor, "recovery.requested", user.id,
                           request=row.id, contact=contact["channel"], via=via)
        await notifications.notify(rt, db, user, "recovery.requested", actor=actor,
                                   cancel_url=cancel_url(rt, row.id))
        await db.commit()
        return row


async def file_request(rt: Runtime, actor: Actor, login_token: str, description: str,
                       contact: dict[str, Any]) -> RecoveryRequest:
    """StepUp's own pages: the login token proves the password."""
    clean_text = clean_description(description)
    clean = clean_contact(contact, rt.settings.default_phone_region)
    return await _file(rt, actor, lambda db: _flow_user(rt, db, login_token), clean_text,
                       clean, VIA_PAGES)


async def file_for_user(rt: Runtime, actor: Actor, user_id: str, description: str,
                        contact: dict[str, Any]) -> RecoveryRequest:
    """A portal, after its own identity check of its user (``actor``: the app's call on
    the end user's behalf). The portal forwards what its user wrote, however short."""
    clean_text = clean_description(description, minimum=1)
    clean = clean_contact(contact, rt.settings.default_phone_region)
    return await _file(rt, actor, lambda db: user_or_not_found(db, user_id, app_id=actor.app_id),
                       clean_text, clean, VIA_API)


async def open_request_for_login(rt: Runtime, login_token: str) -> RecoveryRequest | None:
    """The open request of the account whose password this login token proves."""
    async with rt.db() as db:
        user = await _flow_user(rt, db, login_token)
        return await store.open_request_of(db, user.id)


async def cooldown_for_login(rt: Runtime, login_token: str) -> int:
    """Seconds before the account whose password this login token proves may file a new
    request (0: it may now), so the page can say so before the user writes one."""
    async with rt.db() as db:
        user = await _flow_user(rt, db, login_token)
        return await _cooldown_left(rt, db, user.id)


# --- what the user (or their portal) may see -------------------------------------------------


@dataclass(frozen=True)
class RequestState:
    """A request as its user sees it: the steps and their times, never staff notes,
    identity checks or who performed them."""

    id: str
    status: str
    created_at: datetime
    checked_at: datetime | None
    decided_at: datetime | None
    effective_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None

    @classmethod
    def of(cls, row: RecoveryRequest) -> RequestState:
        return cls(id=row.id, status=row.status, created_at=row.created_at,
                   checked_at=row.checked_at, decided_at=row.decided_at,
                   effective_at=row.effective_at, completed_at=row.completed_at,
                   cancelled_at=row.cancelled_at)


async def latest_for_user(rt: Runtime, user_id: str, app_id: str | None = None
                          ) -> RequestState:
    """The user's latest request, or ``NotFound`` if they never filed one."""
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id, app_id=app_id)
        # An open request is the latest (a new one needs the last one closed), even when
        # two share a timestamp.
        row = await store.open_request_of(db, user.id)
        if row is None:
            rows = await store.requests_of(db, user.id, limit=1)
            row = rows[0] if rows else None
    if row is None:
        raise NotFound("This user has not asked for recovery.")
    return RequestState.of(row)
