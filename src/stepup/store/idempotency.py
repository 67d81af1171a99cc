"""Queries for ``Idempotency-Key`` records: reserve a key, take over a dead or expired
one, store or drop the answer, prune what has expired.

Every step that decides who runs a request is one atomic statement (an INSERT that does
nothing on conflict, a conditional UPDATE), so racing retries on several workers or
hosts never both run it: the database decides. ``lease_until`` doubles as the owner's
token: a new owner always sets a later one, so a call whose lease was taken over can no
longer store or drop the row it lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import IdempotencyRecord

R = IdempotencyRecord


async def reserve(db: AsyncSession, scope: str, key: str, fingerprint: str, *,
                  now: datetime, lease_until: datetime, expires_at: datetime) -> bool:
    """Insert a ``running`` record unless one exists for (scope, key); True if inserted."""
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(R).values(scope=scope, key=key, fingerprint=fingerprint, state="running",
                             created_at=now, lease_until=lease_until, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[R.scope, R.key])
            .returning(R.scope))
    # RETURNING, not rowcount: drivers disagree on what rowcount says after DO NOTHING.
    return (await db.execute(stmt)).first() is not None


async def get(db: AsyncSession, scope: str, key: str) -> IdempotencyRecord | None:
    q = select(R).where(R.scope == scope, R.key == key)
    return (await db.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def take_over(db: AsyncSession, scope: str, key: str, fingerprint: str, *,
                    now: datetime, lease_until: datetime, expires_at: datetime) -> bool:
    """Make the record ``running`` again for a new owner, if it is expired (any request
    may then use the key afresh) or is the same request whose lease is over (its first
    call died). One winner: the condition is checked again on the row being updated."""
    dead = and_(R.fingerprint == fingerprint, R.state == "running", R.lease_until <= now)
    res = await db.execute(
        update(R).where(R.scope == scope, R.key == key, or_(R.expires_at <= now, dead))
        .values(fingerprint=fingerprint, state="running", status=None, content_type=None,
                body_kid=None, body=None, created_at=now, lease_until=lease_until,
                expires_at=expires_at)
        .execution_options(synchronize_session=False))
    return _rowcount(res) == 1


async def finish(db: AsyncSession, scope: str, key: str, lease_until: datetime, *,
                 status: int, content_type: str | None, body_kid: str, body: bytes) -> bool:
    """Store the answer, if the caller still owns the record; True if stored."""
    res = await db.execute(
        update(R).where(R.scope == scope, R.key == key, R.state == "running",
                        R.lease_until == lease_until)
        .values(state="done", status=status, content_type=content_type, body_kid=body_kid,
                body=body)
        .execution_options(synchronize_session=False))
    return _rowcount(res) == 1


async def release(db: AsyncSession, scope: str, key: str, lease_until: datetime) -> bool:
    """Drop a ``running`` record the caller still owns, so the key may be used again."""
    res = await db.execute(
        delete(R).where(R.scope == scope, R.key == key, R.state == "running",
                        R.lease_until == lease_until)
        .execution_options(synchronize_session=False))
    return _rowcount(res) == 1


async def prune(db: AsyncSession, now: datetime, limit: int) -> int:
    """Delete at most ``limit`` records past their expiry, oldest first."""
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): rows another request is
    # pruning or taking over are left to it, so pruning never waits or deadlocks.
    oldest = (select(R.scope, R.key).where(R.expires_at <= now)
              .order_by(R.expires_at).limit(limit).with_for_update(skip_locked=True))
    # The expiry is checked again on the rows themselves: one taken over meanwhile
    # (its expiry moved on) is no longer prunable.
    res = await db.execute(
        delete(R).where(R.expires_at <= now, tuple_(R.scope, R.key).in_(oldest))
        .execution_options(synchronize_session=False))
    return _rowcount(res)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
