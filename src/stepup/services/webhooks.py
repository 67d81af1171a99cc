"""Webhooks to the portal, signed with HMAC-SHA256 and retried with back-off.

Each delivery is a row written in the same transaction as the event, so a confirmed
operation is never lost; a background task in every worker sends what is due, and the
conditional UPDATE that claims a row keeps two workers from sending it at once.

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
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.hashing import new_id
from stepup.services.runtime import Runtime
from stepup.store import operations as store
from stepup.store.models import WebhookDelivery

log = logging.getLogger("stepup.webhooks")
TIMEOUT = httpx.Timeout(5.0)


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


async def enqueue(rt: Runtime, db: AsyncSession, event: str, data: dict[str, Any]) -> None:
    if not rt.settings.webhook_url:
        return
    event_id = new_id()
    now = rt.clock.now()
    body = json.dumps({"id": event_id, "type": event,
                       "created_at": now.isoformat().replace("+00:00", "Z"), "data": data},
                      separators=(",", ":"), sort_keys=True)
    db.add(WebhookDelivery(id=event_id, event=event, url=rt.settings.webhook_url,
                           payload=body, created_at=now, attempts=0, next_attempt_at=now,
                           delivered_at=None, last_error=None))


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


async def deliver_due(rt: Runtime, client: httpx.AsyncClient | None = None) -> int:
    """Send every delivery that is due now; returns how many were accepted."""
    accepted = 0
    own = client is None
    http = client or httpx.AsyncClient(timeout=TIMEOUT)
    try:
        while True:
            async with rt.db() as db:
                now = rt.clock.now()
                row = await store.claim_due_webhook(db, now, now + timedelta(seconds=60))
                await db.commit()
            if row is None:
                return accepted
            ok, error = await _post(rt, http, row)
            async with rt.db() as db:
                fresh = await db.get(WebhookDelivery, row.id)
                assert fresh is not None
                fresh.attempts += 1
                if ok:
                    fresh.delivered_at, fresh.next_attempt_at = rt.clock.now(), None
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
        if own:
            await http.aclose()


async def _post(rt: Runtime, http: httpx.AsyncClient, row: WebhookDelivery
                ) -> tuple[bool, str | None]:
    secret = rt.settings.webhook_secret or ""
    ts = int(rt.clock.now().timestamp())
    headers = {"Content-Type": "application/json", "StepUp-Event-Id": row.id,
               "StepUp-Event": row.event, "StepUp-Signature": signature(secret, ts, row.payload)}
    try:
        r = await http.post(row.url, content=row.payload.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return False, f"transport: {type(exc).__name__}"
    if 200 <= r.status_code < 300:
        return True, None
    return False, f"HTTP {r.status_code}"


async def run_forever(rt: Runtime) -> None:
    """The background sender each worker runs while webhooks are configured."""
    while True:
        try:
            await deliver_due(rt)
        except Exception:  # keep sending later, but never fail silently
            log.exception("webhook sender failed; retrying in %s s",
                          rt.settings.webhook_poll_seconds)
        await asyncio.sleep(rt.settings.webhook_poll_seconds)
