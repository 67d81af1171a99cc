"""Safe retries: the ``Idempotency-Key`` of a portal's call decides whether the call
runs, waits for its first attempt, or gets that attempt's stored answer back.

A key belongs to the API key that sent it (its ``scope``) and to one request (its
``fingerprint``: method, path, query and body). The first call reserves the key with a
lease; the answer it gives is kept for 24 hours, sealed with the key ring, since
enrolment answers hold TOTP secrets and backup codes. Request bodies are never kept.
Which answers are worth keeping is the web layer's call (it knows HTTP statuses).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from stepup.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from stepup.services.runtime import Runtime
from stepup.store import api_keys
from stepup.store import idempotency as store

log = logging.getLogger("stepup.idempotency")

HEADER = "Idempotency-Key"
# How long the first call has to answer before a retry may take it over (it died).
LEASE = timedelta(seconds=60)
# How long a stored answer is replayed; after that the key may be used afresh.
KEEP = timedelta(hours=24)
# Expired records each new reservation removes: enough to keep pace with the inserts,
# never a long delete on the path of a request.
PRUNE_BATCH = 10
# A record can vanish between the failed INSERT and the read (released or pruned):
# then the reservation is simply tried again, a few times.
ATTEMPTS = 3
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Ticket:
    """The right to run a request once: the lease taken on its key."""

    scope: str
    key: str
    lease_until: datetime


@dataclass(frozen=True)
class Stored:
    """The answer the first call gave, to be replayed."""

    status: int
    content_type: str | None
    body: bytes


def parse_key(value: str) -> str:
    """The key: 1–255 visible ASCII characters, bare or as a structured-field string
    (``"abc"``, draft-ietf-httpapi-idempotency-key-header), which is unquoted."""
    value = value.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = _unquote(value[1:-1])
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in value):
        raise ValidationFailed(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII "
                               "characters.", field=HEADER)
    return value


def _unquote(inner: str) -> str:
    out: list[str] = []
    chars = iter(inner)
    for c in chars:
        if c == "\\":
            c = next(chars, "")
            if c not in ('"', "\\"):
                raise ValidationFailed(f"{HEADER} is not a valid quoted string.", field=HEADER)
        elif c == '"':
            raise ValidationFailed(f"{HEADER} is not a valid quoted string.", field=HEADER)
        out.append(c)
    return "".join(out)


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """SHA-256 of the request's method, path, query string and body, each
    length-prefixed so that no two different requests run together into one."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


async def scope_of(rt: Runtime, token: str) -> str | None:
    """The id of the active app key behind ``token``; None for anything else (the
    route itself then answers the failed authentication)."""
    async with rt.db() as db:
        row = await api_keys.get_api_key_by_hash(db, rt.hasher.token_hash(token))
    if row is None or row.revoked_at is not None or row.role != "app":
        return None
    return row.id


async def begin(rt: Runtime, scope: str, key: str, fingerprint: str) -> Ticket | Stored:
    """Reserve ``key`` for this request (a Ticket: run it, then ``finish`` or
    ``release``) or give the stored answer. IdempotencyKeyReused: the key was used
    with another request; IdempotencyKeyInUse: its first call is still running."""
    for _ in range(ATTEMPTS):
        now = rt.clock.now()
        lease_until, expires_at = now + LEASE, now + KEEP
        async with rt.db() as db:
            if await store.reserve(db, scope, key, fingerprint, now=now,
                                   lease_until=lease_until, expires_at=expires_at):
                await store.prune(db, now, PRUNE_BATCH)
                await db.commit()
                return Ticket(scope, key, lease_until)
            row = await store.get(db, scope, key)
            if row is None:
                continue
            expired = row.expires_at <= now
            died = (row.fingerprint == fingerprint and row.state == "running"
                    and row.lease_until <= now)
            if expired or died:
                if await store.take_over(db, scope, key, fingerprint, now=now,
                                         lease_until=lease_until, expires_at=expires_at):
                    await db.commit()
                    return Ticket(scope, key, lease_until)
                continue  # another retry took it over first: look again
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was already used with another request (method, path "
                    "or body); use a new key for a new request.", field=HEADER)
            if row.state != "done" or row.body is None or row.body_kid is None:
                raise IdempotencyKeyInUse(
                    f"The first request with this {HEADER} is still being processed; "
                    "retry shortly.", retry_after=1)
            body = rt.keyring.decrypt(row.body_kid, row.body, _aad(scope, key))
            return Stored(int(row.status or 200), row.content_type, body)
    raise IdempotencyKeyInUse(f"The request with this {HEADER} is changing hands; retry "
                              "shortly.", retry_after=1)


async def finish(rt: Runtime, ticket: Ticket, status: int, content_type: str | None,
                 body: bytes) -> None:
    """Keep the answer for replays (sealed: it may hold secrets)."""
    kid, sealed = rt.keyring.encrypt(body, _aad(ticket.scope, ticket.key))
    async with rt.db() as db:
        stored = await store.finish(db, ticket.scope, ticket.key, ticket.lease_until,
                                    status=status, content_type=content_type,
                                    body_kid=kid, body=sealed)
        await db.commit()
    if not stored:
        log.warning("idempotency key of %s was taken over before its answer was stored",
                    ticket.scope)


async def release(rt: Runtime, ticket: Ticket) -> None:
    """Forget the reservation: the answer is not worth replaying, the key is free."""
    async with rt.db() as db:
        await store.release(db, ticket.scope, ticket.key, ticket.lease_until)
        await db.commit()


def _aad(scope: str, key: str) -> bytes:
    # Binds a sealed answer to its API key and key: copied to another row, it fails.
    return b"idempotency\x1f" + scope.encode() + b"\x1f" + key.encode()
