"""Webhooks to the portals, signed with HMAC-SHA256 and retried with back-off.

Each app may have its own URL and secret (``stepup app set NAME --webhook-url …
--webhook-secret …``); the events of the users of an app without one go to
``STEPUP_WEBHOOK_URL``, signed with ``STEPUP_WEBHOOK_SECRET``, if that is set. Where a
delivery goes and how it is signed are decided each time it is sent, so a portal that
fixes its URL and asks for a redelivery gets it at the new address.

Each delivery is a row written in the same transaction as the event, so a confirmed
operation is never lost; a background task in every worker sends what is due, and the
conditional UPDATE that claims a row keeps two workers from sending it at once. The same
task moves operations past their expiry to ``expired`` (one conditional UPDATE: one
worker wins) and queues ``operation.expired`` with that change, so it is sent once.

Payload: ``{id, type, created_at, data: {user: {id, external_id}, …}}`` — never a
secret, a code or a phone number. Security events (``SECURITY_EVENTS``) are queued by
``services/notifications.notify``, the one place that tells about them.

Signature: ``StepUp-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
A receiver recomputes it, refuses a ``t`` older than 5 minutes, and remembers
``StepUp-Event-Id`` to drop a replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.delivery import http as delivery_http
from stepup.domain.errors import NotFound, ValidationFailed, WebhookNotConfigured
from stepup.domain.hashing import new_id
from stepup.domain.keyring import KeyRingError
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import apps as apps_store
from stepup.store import webhooks as store
from stepup.store.models import STAFF_APP_ID, App, Operation, User, WebhookDelivery

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("stepup.webhooks")
LEASE = timedelta(seconds=60)
# Security notices that are also webhook events (the portal's copy of what StepUp tells
# the user, and what it tells instead when the app turned StepUp's notices off).
SECURITY_EVENTS = frozenset({"method.enabled", "method.disabled", "method.locked",
                             "account.locked", "recovery.requested", "recovery.approved",
                             "recovery.rejected", "recovery.cancelled", "recovery.completed"})
TEST_EVENT = "webhook.test"
# The only facts of a notice that go into its event: nothing secret (a cancel link
# carries a token) and no destination (a phone number).
EVENT_FACTS = ("method", "effective_at", "ip")
# Operations are moved to "expired" at most this often per worker: the sweep is a query
# over operations, the sending poll a query over the (small) due deliveries.
EXPIRY_SWEEP_SECONDS = 10.0
EXPIRY_BATCH = 100
MAX_PAGE = 100


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: str, now: int, tolerance: int = 300
                     ) -> bool:
    """What a receiver does (and what our docs show): check the MAC and the age."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = signature(secret, ts, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# --- where a delivery goes -------------------------------------------------------------


def _aad(app_id: str) -> bytes:
    return f"app-webhook-secret:{app_id}".encode()


def seal_secret(rt: Runtime, app: App, raw: str) -> None:
    app.webhook_secret_kid, app.webhook_secret_ct = rt.keyring.encrypt(raw.encode(),
                                                                       _aad(app.id))


def target_url(rt: Runtime, app: App | None) -> str | None:
    """The URL the events of ``app``'s users go to now: its own, else the global one;
    none for the support staff's (no portal hears about them)."""
    if app is not None and app.id == STAFF_APP_ID:
        return None
    if app is not None and app.webhook_url:
        return app.webhook_url
    return rt.settings.webhook_url or None


def _target(rt: Runtime, app: App | None) -> tuple[str, str] | None:
    """(URL, signing secret) for ``app`` now."""
    if app is not None and app.id == STAFF_APP_ID:
        return None
    if app is not None and app.webhook_url:
        if not app.webhook_secret_kid or app.webhook_secret_ct is None:
            raise KeyRingError("the app's webhook secret is missing")
        raw = rt.keyring.decrypt(app.webhook_secret_kid, app.webhook_secret_ct, _aad(app.id))
        return app.webhook_url, raw.decode()
    if rt.settings.webhook_url:
        return rt.settings.webhook_url, rt.settings.webhook_secret or ""
    return None


# --- queueing --------------------------------------------------------------------------


def user_ref(user: User) -> dict[str, Any]:
    """How every event names its user: ours and the portal's own id (null if none)."""
    return {"id": user.id, "external_id": user.external_id}


def _body(event_id: str, event: str, at: datetime, data: dict[str, Any]) -> str:
    return json.dumps({"id": event_id, "type": event, "created_at": iso(at), "data": data},
                      separators=(",", ":"), sort_keys=True)


async def enqueue(rt: Runtime, db: AsyncSession, event: str, data: dict[str, Any], *,
                  user: User | None = None, app: App | None = None) -> WebhookDelivery | None:
    """Queue ``event`` about ``user`` in the caller's transaction, if a URL takes it.

    Without ``user``, the user is the one the data's operation names (``operation.
    confirmed`` is queued so); ``app``: the user's app, when the caller has it already.
    """
    if user is None:
        user_id = data.get("user_id") or (data.get("operation") or {}).get("user_id")
        user = await db.get(User, user_id) if user_id else None
    if app is None and user is not None:
        app = await apps_store.get_app(db, user.app_id)
    url = target_url(rt, app)
    if url is None:
        return None
    payload = {"user": user_ref(user), **data} if user is not None else dict(data)
    now, event_id = rt.clock.now(), new_id()
    row = WebhookDelivery(id=event_id, app_id=app.id if app else None, event=event, url=url,
                          payload=_body(event_id, event, now, payload), created_at=now,
                          attempts=0, next_attempt_at=now, delivered_at=None, last_error=None)
    db.add(row)
    return row


async def security_event(rt: Runtime, db: AsyncSession, user: User, app: App | None,
                         kind: str, facts: dict[str, Any]) -> None:
    """The webhook twin of a security notice (``notifications.notify`` calls this)."""
    if kind not in SECURITY_EVENTS:
        return
    data: dict[str, Any] = {k: facts[k] for k in EVENT_FACTS if facts.get(k) is not None}
    if "effective_at" in data:
        data["effective_at"] = iso(datetime.fromisoformat(str(data["effective_at"])))
    if kind.endswith(".locked") and facts.get("seconds"):
        seconds = int(facts["seconds"])
        data["locked_seconds"] = seconds
        data["locked_until"] = iso(rt.clock.now() + timedelta(seconds=seconds))
    await enqueue(rt, db, kind, data, user=user, app=app)


def operation_data(op: Operation) -> dict[str, Any]:
    return {"id": op.id, "type": op.type, "details": dict(op.details), "user_id": op.user_id,
            "status": "expired", "created_at": iso(op.created_at),
            "expires_at": iso(op.expires_at)}


async def expire_due(rt: Runtime) -> int:
    """Move operations past their expiry to ``expired`` and queue ``operation.expired``
    with each move; returns how many this worker moved. Several workers may run it at
    once: the conditional UPDATE lets one of them move each operation."""
    moved = 0
    for _batch in range(100):
        async with rt.db() as db:
            now = rt.clock.now()
            due = await store.expired_operations(db, now, EXPIRY_BATCH)
            for op in due:
                if await store.mark_expired(db, op, now):
                    user = await db.get(User, op.user_id)
                    await enqueue(rt, db, "operation.expired", {"operation": operation_data(op)},
                                  user=user)
                    moved += 1
            await db.commit()
        if len(due) < EXPIRY_BATCH:
            break
    return moved


# --- sending ---------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


async def deliver_due(rt: Runtime, client: httpx.AsyncClient | None = None) -> int:
    """Send every delivery that is due now; returns how many were accepted."""
    accepted = 0
    own = client is None
    # Made when a delivery is due, not on every idle poll: a client builds a TLS context
    # (the CA bundle read and parsed), milliseconds of CPU every few seconds per worker.
    http = client
    try:
        while True:
            async with rt.db() as db:
                now = rt.clock.now()
                row = await store.claim_due(db, now, now + LEASE)
                await db.commit()
                target: tuple[str, str] | None = None
                problem: str | None = None
                if row is not None:
                    try:
                        app = await apps_store.get_app(db, row.app_id) if row.app_id else None
                        target = _target(rt, app)
                    except (KeyRingError, ValueError) as exc:
                        problem = f"cannot unseal the app's webhook secret: {exc}"[:300]
            if row is None:
                return accepted
            url = row.url
            error: str | None = problem or "no webhook URL is set"
            if target is None:
                ok = False
            else:
                url, secret = target
                if http is None:
                    http = delivery_http.new_client()
                ok, error = await _post(rt, http, row, url, secret)
            async with rt.db() as db:
                fresh = await store.get(db, row.id)
                if fresh is None:
                    continue
                fresh.attempts += 1
                fresh.url = url
                if ok:
                    fresh.delivered_at, fresh.next_attempt_at = rt.clock.now(), None
                    fresh.last_error = None
                    accepted += 1
                elif fresh.attempts >= rt.settings.webhook_max_attempts:
                    fresh.next_attempt_at, fresh.last_error = None, error
                    log.error("webhook %s given up after %d attempts: %s", row.id,
                              fresh.attempts, error)
                else:
                    fresh.next_attempt_at = rt.clock.now() + _backoff(fresh.attempts)
                    fresh.last_error = error
                await db.commit()
    finally:
        if own and http is not None:
            await http.aclose()


async def _post(rt: Runtime, http: httpx.AsyncClient, row: WebhookDelivery, url: str,
                secret: str) -> tuple[bool, str | None]:
    ts = int(rt.clock.now().timestamp())
    headers = {"Content-Type": "application/json", "StepUp-Event-Id": row.id,
               "StepUp-Event": row.event, "StepUp-Signature": signature(secret, ts, row.payload)}
    import httpx  # loaded already: ``http`` is its client

    try:
        r = await http.post(url, content=row.payload.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return False, f"transport: {type(exc).__name__}"
    if 200 <= r.status_code < 300:
        return True, None
    return False, f"HTTP {r.status_code}"


async def run_forever(rt: Runtime) -> None:
    """The background sender every worker runs (an idle poll costs one small query)."""
    last_sweep = float("-inf")
    while True:
        try:
            if time.monotonic() - last_sweep >= EXPIRY_SWEEP_SECONDS:
                last_sweep = time.monotonic()
                await expire_due(rt)
            await deliver_due(rt)
        except Exception:  # keep sending later, but never fail silently
            log.exception("webhook sender failed; retrying in %s s",
                          rt.settings.webhook_poll_seconds)
        await asyncio.sleep(rt.settings.webhook_poll_seconds)


# --- what a portal asks about its webhooks (web/api/webhooks.py) -----------------------


async def send_test(rt: Runtime, actor: Actor, app_id: str) -> WebhookDelivery:
    """Queue a signed ``webhook.test`` event to the app's webhook URL."""
    async with rt.db() as db:
        app = await apps_store.get_app(db, app_id)
        if app is None or target_url(rt, app) is None:
            raise WebhookNotConfigured("No webhook URL is set for this app: ask the operator "
                                       "to run `stepup app set NAME --webhook-url URL "
                                       "--webhook-secret SECRET`.")
        row = await enqueue(rt, db, TEST_EVENT, {"app": {"id": app.id, "name": app.name}},
                            app=app)
        assert row is not None
        await audit.record(db, rt.clock, actor, "webhook.test_sent", None, app=app.id,
                           delivery=row.id)
        await db.commit()
        return row


async def deliveries(rt: Runtime, app_id: str, *, status: str | None = None,
                     before: tuple[datetime, str] | None = None, limit: int = 20
                     ) -> tuple[list[WebhookDelivery], bool]:
    """The app's deliveries, newest first, after ``before`` (the created_at and id of the
    last one seen); and whether there are more."""
    if status is not None and status not in store.STATUSES:
        raise ValidationFailed(f"status is one of {', '.join(store.STATUSES)}.", field="status")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit is 1 to {MAX_PAGE}.", field="limit")
    async with rt.db() as db:
        rows = list(await store.page(db, app_id, status=status, before=before,
                                     limit=limit + 1))
    return rows[:limit], len(rows) > limit


async def redeliver(rt: Runtime, actor: Actor, app_id: str, delivery_id: str
                    ) -> WebhookDelivery:
    """Send a delivery of the app again: pending, due now, attempts counted afresh."""
    async with rt.db() as db:
        row = await store.get(db, delivery_id)
        if row is None or row.app_id != app_id:
            raise NotFound("No such delivery.")
        await store.reset(db, row.id, rt.clock.now())
        await audit.record(db, rt.clock, actor, "webhook.redelivered", None, app=app_id,
                           delivery=row.id, kind=row.event)
        await db.commit()
        fresh = await store.get(db, row.id)
        assert fresh is not None
        return fresh
