"""Security notices: who is told what, queued with the change, sent in the background.

This is the one place that decides who hears about an event:

- every notice goes to the account e-mail (the contact of record), and by SMS to the
  user's verified phone (the destination of the enabled SMS method) when there is one;
- the recovery notices (``recovery.*``) go to every verified contact — also the address
  of the e-mail method when it differs from the account e-mail — and can never be
  turned off; so does a password reset (``account.password_reset``: whoever reads the
  account e-mail could have done it), which can be turned off like any other notice;
- an operator turns other kinds off with ``STEPUP_NOTIFICATIONS_OFF``, and for the users
  of one app with ``stepup app set NAME --notices off`` (that portal tells its users
  itself, from the webhook events);
- a user of an app other than ``portal`` hears from that app: the notice names its
  display name and address, never a StepUp account or password they do not have.

The security events a portal may act on (``webhooks.SECURITY_EVENTS``) are queued here
as webhooks too, whether or not the notice itself goes out, so no service tells about
an event in two places.

``notify`` writes one ``notification_queue`` row per recipient in the caller's
transaction, so a notice exists exactly when the change it tells about committed; the
recipient is sealed with the key ring for that row, and dropped once the notice is sent
(or given up). ``deliver_due`` (run by every worker, ``run_forever``) claims due rows
with a conditional UPDATE, so two workers never send one notice twice, and retries
failures with back-off until ``STEPUP_NOTIFICATION_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.delivery import operator
from stepup.delivery.base import OutgoingMessage, ProviderError
from stepup.delivery.notices import notice_message
from stepup.delivery.password_reset import RESET_LINK, reset_link_message
from stepup.domain.agents import short_agent
from stepup.methods import registry
from stepup.services import audit, webhooks
from stepup.services.runtime import Actor, Runtime
from stepup.store import apps as apps_store
from stepup.store import notices as store
from stepup.store import queries
from stepup.store.models import PORTAL_APP_ID, App, NotificationQueue, User

log = logging.getLogger("stepup.notifications")

RECOVERY_KINDS = frozenset({"recovery.requested", "recovery.approved", "recovery.rejected",
                            "recovery.cancelled", "recovery.completed"})
KINDS = frozenset({"method.enabled", "method.disabled", "method.protection_switched",
                   "passkey.added", "passkey.removed",
                   "backup_codes.regenerated", "backup_codes.low", "login.new_device",
                   "account.locked", "method.locked", "account.email_changed",
                   "account.pin_changed", "account.password_changed",
                   "account.password_reset", "account.email_verified"}) | RECOVERY_KINDS
# Told to every verified contact (see the module's docstring).
EVERY_CONTACT = RECOVERY_KINDS | {"account.password_reset"}
# Data worth nothing once the notice is out, and too sensitive to keep (a cancel link
# carries a token).
DROP_AFTER_SENDING = ("cancel_url", "reset_url")
LEASE = timedelta(seconds=120)
BATCH = 50  # notices claimed, sent and recorded together
SYSTEM = Actor(name="system")


def is_off(rt: Runtime, kind: str, app: App | None = None) -> bool:
    if kind in RECOVERY_KINDS:
        return False
    return kind in rt.settings.notifications_off or (app is not None and not app.notices)


def app_voice(app: App | None) -> dict[str, Any]:
    """What a notice needs to speak for the user's app (nothing for StepUp's own)."""
    if app is None or app.id == PORTAL_APP_ID:
        return {}
    return {"app_name": app.display_name or app.name, "app_url": app.url}


async def recipients(rt: Runtime, db: AsyncSession, user: User, kind: str, *,
                     phone: str | None = None, previous_email: str | None = None
                     ) -> list[tuple[str, str]]:
    """(channel, destination) pairs that hear about ``kind``, without repeats."""
    out: list[tuple[str, str]] = [("email", user.email)]
    if previous_email and previous_email.lower() != user.email.lower():
        # The account e-mail itself changed: the old address hears it too.
        out.append(("email", previous_email))
    if phone is None and user.phone_verified:
        # The phone an enabled SMS method sends to: a code reached it, so it is verified.
        verifier = registry.phone_verifier()
        sms = await store.enabled_method(db, user.id, verifier) if verifier else None
        phone = rt.destinations.read(sms) if sms is not None else None
    if phone:
        out.append(("sms", phone))
    if kind in EVERY_CONTACT:
        mail = registry.sending_to("email")
        method = await store.enabled_method(db, user.id, mail) if mail else None
        other = rt.destinations.read(method) if method is not None else None
        if other and other.lower() != user.email.lower():
            out.append(("email", other))
    return out


async def notify(rt: Runtime, db: AsyncSession, user: User, kind: str, *,
                 actor: Actor | None = None, phone: str | None = None,
                 previous_email: str | None = None, **data: Any) -> None:
    """Queue the notice ``kind`` about ``user`` in the caller's transaction.

    ``data`` fills the text (``method``, ``remaining``, ``seconds``, ``after``,
    ``cancel_url``, ``effective_at`` …); the time and the actor's IP and device are added
    here. ``phone``: the verified phone to tell when the SMS method is being removed in
    this same transaction (so the query would no longer find it); ``previous_email``: the
    account's e-mail before this change replaced it (``account.email_changed``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    now = rt.clock.now()
    facts: dict[str, Any] = {k: v.isoformat() if isinstance(v, datetime) else v
                             for k, v in data.items()}
    facts["at"] = now.isoformat()
    if actor is not None and actor.ip and "ip" not in data:
        facts["ip"] = actor.ip
    if actor is not None and actor.user_agent and "device" not in data:
        facts["device"] = short_agent(actor.user_agent)
    app = await apps_store.read_app(db, user.app_id)
    await webhooks.security_event(rt, db, user, app, kind, facts)
    if is_off(rt, kind, app):
        return
    facts.update(app_voice(app))
    await db.flush()  # the change being told about decides the recipients (a new phone)
    for channel, destination in await recipients(rt, db, user, kind, phone=phone,
                                                 previous_email=previous_email):
        await store.enqueue(db, rt.destinations, now, user_id=user.id, kind=kind,
                            channel=channel, to=destination, language=user.language or "en",
                            data=facts)


def message_for(rt: Runtime, row: NotificationQueue) -> OutgoingMessage:
    to = rt.destinations.read(row)
    if to is None:
        raise ValueError("the notice has no recipient")
    if row.kind in operator.KINDS:  # to the operator (methods/oob.py queues it), no user
        return operator.operator_message(kind=row.kind, to=to, issuer=rt.settings.issuer,
                                         data=row.data)
    if row.kind == RESET_LINK:  # services/account_security.py queues it, e-mail only
        return reset_link_message(to=to, language=row.language, issuer=rt.settings.issuer,
                                  data=row.data)
    return notice_message(kind=row.kind, channel=row.channel, to=to,
                          language=row.language, issuer=rt.settings.issuer, data=row.data)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


async def _send(rt: Runtime, row: NotificationQueue) -> str | None:
    """Send one notice; the error (for the log, never the user) or None."""
    try:
        message = message_for(rt, row)
    except (KeyError, ValueError, TypeError) as exc:
        return f"cannot build the message: {exc}"[:300]
    try:
        await rt.delivery.send(message)
    except ProviderError as exc:
        return str(exc)[:300]
    return None


async def deliver_due(rt: Runtime) -> int:
    """Send every notice that is due now; returns how many were sent.

    Notices go in batches of ``BATCH``: one transaction claims a batch, each is sent,
    and one transaction records how each went. A burst of logins from new devices
    (each queues a notice) then costs two transactions per batch rather than two per
    notice, and the sender gives the event loop back between sends, so requests are
    served during a burst rather than after it.
    """
    sent = 0
    while True:
        async with rt.db() as db:
            now = rt.clock.now()
            rows = await store.claim_due(db, now, now + LEASE, limit=BATCH)
            await db.commit()
        if not rows:
            return sent
        await asyncio.sleep(0)  # between two transactions of the sender's: requests first
        outcomes: list[tuple[NotificationQueue, str | None]] = []
        started = time.monotonic()
        for row in rows:
            if outcomes and time.monotonic() - started > LEASE.total_seconds() / 2:
                break  # slow sends: give the rest back before the lease could run out
            outcomes.append((row, await _send(rt, row)))
            # Let a waiting request have the connection: SQLite's statements run inline
            # (store/sqlite_connection.py), so a burst of sends to the development outbox would
            # otherwise never give the event loop back, and the pool's queue lets the
            # sender take the freed connection again before a waiter wakes.
            await asyncio.sleep(0)
        async with rt.db() as db:
            fresh_rows = await store.get_many(db, [row.id for row in rows])
            for row, error in outcomes:
                fresh = fresh_rows.get(row.id)
                if fresh is None:  # the account was deleted meanwhile
                    continue
                sent += await _record(rt, db, row, fresh, error)
            untried = [row.id for row in rows[len(outcomes):]]
            if untried:  # due again at once, unless another worker took them meanwhile
                await store.give_back(db, untried, now + LEASE, rt.clock.now())
            await db.commit()


async def _record(rt: Runtime, db: AsyncSession, row: NotificationQueue,
                  fresh: NotificationQueue, error: str | None) -> int:
    """Write down how sending ``row`` went; 1 if it was sent."""
    fresh.attempts += 1
    if error is None:
        fresh.sent_at, fresh.next_attempt_at, fresh.last_error = rt.clock.now(), None, None
        fresh.data = {k: v for k, v in fresh.data.items() if k not in DROP_AFTER_SENDING}
        rt.destinations.drop(fresh)  # nothing will be sent to it again
        return 1
    if fresh.attempts >= rt.settings.notification_max_attempts:
        fresh.next_attempt_at, fresh.last_error = None, error
        rt.destinations.drop(fresh)
        log.error("security notice %s (%s by %s) given up after %d attempts: %s",
                  row.id, row.kind, row.channel, fresh.attempts, error)
        if fresh.user_id and await queries.get_user(db, fresh.user_id) is not None:
            await audit.record(db, rt.clock, SYSTEM, "notice.failed", fresh.user_id,
                               kind=row.kind, channel=row.channel, attempts=fresh.attempts)
        return 0
    fresh.next_attempt_at = rt.clock.now() + _backoff(fresh.attempts)
    fresh.last_error = error
    log.warning("security notice %s (%s by %s) failed, attempt %d: %s", row.id,
                row.kind, row.channel, fresh.attempts, error)
    return 0


async def run_forever(rt: Runtime) -> None:
    """The background sender every worker runs (notices are always on)."""
    while True:
        try:
            await deliver_due(rt)
        except Exception:  # keep sending later, but never fail silently
            log.exception("security notice sender failed; retrying in %s s",
                          rt.settings.notification_poll_seconds)
        await asyncio.sleep(rt.settings.notification_poll_seconds)
