"""Audit events, written in the caller's transaction so they commit with the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.clock import Clock
from stepup.services.runtime import Actor
from stepup.store import queries
from stepup.store.models import AuditEvent


async def record(db: AsyncSession, clock: Clock, actor: Actor, event: str,
                 user_id: str | None, **data: Any) -> None:
    await queries.add_audit_event(db, AuditEvent(
        user_id=user_id, actor=actor.name, event=event, ip=actor.ip,
        user_agent=(actor.user_agent or "")[:300] or None, data=data,
        created_at=clock.now(),
    ))
