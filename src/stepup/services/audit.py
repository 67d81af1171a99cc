"""Audit events, written in the caller's transaction so they commit with the change, and
chained by hashes so that an edited, removed or reordered row shows.

Each account has its own chain (its events in id order), and events with no account
form one global chain, so accounts never wait for each other. A row stores
``prev_hash`` (the ``hash`` of the row before it in its chain, None for the first) and
``hash = sha256(prev_hash || canonical JSON of its content)``, where the content is
everything but the id: user_id, actor, event, ip, user_agent, data and created_at (ISO
8601, UTC). The account's newest hash is also kept in ``users.audit_head``, so removing
the newest events shows too. ``verify`` walks every chain and names the first broken
link; ``stepup audit verify`` runs it.

Rows written before the chain existed (no hashes) are accepted only at the start of a
chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.clock import Clock
from stepup.services import ratelimit
from stepup.services.runtime import Actor, Runtime
from stepup.store import audit as store
from stepup.store.models import AuditEvent, User

# What is hashed of an event: everything but its id and hashes.
CONTENT = ("user_id", "actor", "event", "ip", "user_agent", "data", "created_at")


def _canonical(content: dict[str, Any]) -> bytes:
    created = content["created_at"].astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps({**content, "data": content["data"] or {}, "created_at": created},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def _hash(prev_hash: str | None, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash or "").encode() + _canonical(content)).hexdigest()


def canonical(event: AuditEvent) -> bytes:
    return _canonical({name: getattr(event, name) for name in CONTENT})


def chain_hash(prev_hash: str | None, event: AuditEvent) -> str:
    return _hash(prev_hash, {name: getattr(event, name) for name in CONTENT})


def _content(actor: Actor, event: str, user_id: str | None, data: dict[str, Any],
             at: datetime) -> dict[str, Any]:
    """An event's row as plain values, its ``CONTENT`` (no ORM object: it is only hashed
    and inserted)."""
    return {"user_id": user_id, "actor": actor.name, "event": event, "ip": actor.ip,
            "user_agent": (actor.user_agent or "")[:300] or None, "data": data,
            "created_at": at}


def first_of_chain(actor: Actor, event: str, user_id: str, at: datetime,
                   **data: Any) -> dict[str, Any]:
    """The row (its columns but the id) of the first event of a new account's chain,
    chained to nothing: for accounts written in bulk with their first event
    (``stepup bench seed``), whose ``audit_head`` is then its ``hash``."""
    content = _content(actor, event, user_id, data, at)
    return {**content, "prev_hash": None, "hash": _hash(None, content)}


async def record(db: AsyncSession, clock: Clock, actor: Actor, event: str,
                 user: str | User | None, **data: Any) -> None:
    """Chain ``event`` to its account's events (``user``: the account, or its id) or, with
    no account, to the global chain, in ``db``'s transaction.

    Given the account's object, the chain's head it holds is taken as the one to chain
    to, and checked as the head moves on (``store.add_advancing``): a verification's
    account was read in the same transaction, so its head is the row's and the event
    costs two statements, not three (one on PostgreSQL). Where it is not (read earlier,
    or by a transaction that another one overtook), the head is read and locked as for
    an id."""
    await _record(db, clock, actor, event, user, data, last=False)


async def record_last(db: AsyncSession, clock: Clock, actor: Actor, event: str,
                      user: User, **data: Any) -> None:
    """``record``, as the last write of ``db``'s transaction before it commits: on
    PostgreSQL an API key's call still to be counted at COMMIT (``apikeys.held``) is
    counted by the event's statement (``store.add_advancing``'s ``last``), one round trip
    fewer. Changes the session still holds (an SMS or e-mail code's method row, its last
    use) are written by the COMMIT's flush after it, as in every other transaction that
    changes a method row through the session: after the user row. The counter row is then
    locked before that method row, but no cycle can close through it: any other writer of
    the method row in the session's way holds the user row first, which this transaction
    holds."""
    await _record(db, clock, actor, event, user, data, last=True)


async def _record(db: AsyncSession, clock: Clock, actor: Actor, event: str,
                  user: str | User | None, data: dict[str, Any], *, last: bool) -> None:
    user_id = user.id if isinstance(user, User) else user
    if actor.via_ip and "via_ip" not in data:
        # A portal's call: ``ip`` is its end user's; which of its servers called is
        # worth knowing too (a key used from somewhere unexpected), never shown to users.
        data = {**data, "via_ip": actor.via_ip}
    content = _content(actor, event, user_id, data, clock.now())
    # Lock the chain's head first: the next event of this chain waits until we commit,
    # so the chain order is the order of the ids.
    if isinstance(user, User):
        prev = user.audit_head
        head = _hash(prev, content)
        if await store.add_advancing(db, user, {**content, "prev_hash": prev, "hash": head},
                                     last=last):
            return
    if user_id is None:
        await store.lock_global_chain(db)
        prev = await store.last_hash(db, None)
        exists = False
    else:
        exists, prev = await store.lock_user_head(db, user_id)
        # A right code checked on guards read before the head moved: read them again.
        await ratelimit.check_hold(db, user_id)
        if not exists:
            await store.lock_orphan_chain(db, user_id)
            prev = await store.last_hash(db, user_id)
    head = _hash(prev, content)
    await store.add(db, {**content, "prev_hash": prev, "hash": head})
    if exists:
        assert user_id is not None
        await store.set_user_head(db, user_id, head)
        if isinstance(user, User):
            store.held_head(user, head)


# --- verification ----------------------------------------------------------------------


@dataclass
class Break:
    event_id: int
    user_id: str | None
    problem: str

    def __str__(self) -> str:
        chain = f"account {self.user_id}" if self.user_id else "events without an account"
        return f"event {self.event_id} ({chain}): {self.problem}"


@dataclass
class _Chain:
    prev: str | None = None
    last_id: int | None = None
    started: bool = False
    broken: bool = False


@dataclass
class Report:
    events: int = 0
    chains: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first(self) -> Break | None:
        return min(self.breaks, key=lambda b: b.event_id) if self.breaks else None


async def verify_chains(db: AsyncSession) -> Report:
    """Walk every chain in id order; report the first broken link of each chain."""
    report = Report()
    chains: dict[str | None, _Chain] = {}
    async for row in store.stream_all(db):
        report.events += 1
        chain = chains.setdefault(row.user_id, _Chain())
        if chain.broken:
            continue
        problem = _check(chain, row)
        if problem is not None:
            chain.broken = True
            report.breaks.append(Break(row.id, row.user_id, problem))
            continue
        if row.hash is not None:
            chain.started, chain.prev = True, row.hash
        chain.last_id = row.id
    for user_id, head in (await store.heads(db)).items():
        found = chains.get(user_id)
        if found is None or found.broken:
            if found is None and head is not None:
                report.breaks.append(Break(0, user_id, "the account's chain head names an "
                                                       "event, but the account has no events"))
            continue
        if head != found.prev and (head is not None or found.started):
            assert found.last_id is not None
            report.breaks.append(Break(found.last_id, user_id,
                                       "the account's chain head does not match its newest "
                                       "event: events after this one were removed"))
    report.chains = len(chains)
    return report


def _check(chain: _Chain, row: AuditEvent) -> str | None:
    if row.hash is None:
        if chain.started:
            return "the event has no hash in the middle of its chain"
        return None  # written before the chain existed
    if row.prev_hash != chain.prev:
        before = f"event {chain.last_id}" if chain.last_id is not None else "none"
        return (f"prev_hash does not match the event before it in the chain ({before}): "
                "an event was removed, inserted or moved")
    if chain_hash(row.prev_hash, row) != row.hash:
        return "the content differs from what was hashed: the event was edited"
    return None


async def verify(rt: Runtime) -> Report:
    async with rt.db() as db:
        return await verify_chains(db)


def summary_of(event: AuditEvent) -> dict[str, Any]:
    """What a user or support may see of an event: never a secret, never a hash."""
    data = event.data or {}
    keep = {k: data[k] for k in ("method", "purpose", "second_factor", "reason", "seconds",
                                 "kind", "channel", "new_device")
            if data.get(k) is not None}
    return keep


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- reading -----------------------------------------------------------------------------


async def events_of(rt: Runtime, user_id: str, *, limit: int = 50,
                    before_id: int | None = None) -> list[AuditEvent]:
    """The account's own events, newest first."""
    async with rt.db() as db:
        return list(await store.search(db, user_id=user_id, before_id=before_id,
                                       limit=limit))


async def search(rt: Runtime, *, user_id: str | None = None, event: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 before_id: int | None = None, limit: int = 50) -> list[AuditEvent]:
    """Events for support, newest first, filtered."""
    since, until = _aware(since), _aware(until)
    async with rt.db() as db:
        return list(await store.search(db, user_id=user_id, event=event, since=since,
                                       until=until, before_id=before_id, limit=limit))


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
