"""Security events (the audit log): ``/me/events`` for the user's own, and
``/admin/events`` for support (API keys of role ``support``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from stepup.domain.agents import short_agent
from stepup.services import audit
from stepup.store.models import ApiKey, AuditEvent
from stepup.web.deps import Caller, caller, runtime, support_key

router = APIRouter(prefix="/me/events", tags=["events"])
admin_router = APIRouter(prefix="/admin/events", tags=["support"])
Who = Annotated[Caller, Depends(caller)]
Support = Annotated[ApiKey, Depends(support_key)]
Limit = Annotated[int, Query(ge=1, le=200, description="How many, newest first")]
Before = Annotated[int | None, Query(ge=1, le=2 ** 63 - 1,
                                     description="Only events older than this id "
                                                 "(the next page)")]


class EventOut(BaseModel):
    id: int
    event: str = Field(examples=["login.succeeded"])
    created_at: datetime
    ip: str | None = None
    user_agent: str | None = Field(default=None, description="The browser, in short",
                                   examples=["Chrome 126, Linux"])
    method: str | None = None
    purpose: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, row: AuditEvent) -> EventOut:
        facts = audit.summary_of(row)
        return cls(id=row.id, event=row.event, created_at=row.created_at, ip=row.ip,
                   user_agent=short_agent(row.user_agent), method=facts.pop("method", None),
                   purpose=facts.pop("purpose", None), details=facts)


class EventsOut(BaseModel):
    events: list[EventOut]


class AdminEventOut(BaseModel):
    id: int
    user_id: str | None = None
    actor: str
    event: str
    created_at: datetime
    ip: str | None = None
    user_agent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class AdminEventsOut(BaseModel):
    events: list[AdminEventOut]


@router.get("", response_model=EventsOut)
async def my_events(request: Request, who: Who, limit: Limit = 50,
                    before: Before = None) -> EventsOut:
    """The user's own security events, newest first (never a secret)."""
    rows = await audit.events_of(runtime(request), who.user.id, limit=limit, before_id=before)
    return EventsOut(events=[EventOut.of(r) for r in rows])


@admin_router.get("", response_model=AdminEventsOut)
async def admin_events(request: Request, key: Support, limit: Limit = 50,
                       before: Before = None,
                       user_id: Annotated[str | None, Query(max_length=32)] = None,
                       event: Annotated[str | None, Query(
                           max_length=60, description="An event name, or a prefix ending "
                                                      "in '.' or '*' (e.g. 'login.')")] = None,
                       since: Annotated[datetime | None, Query(
                           description="From this instant (RFC 3339), inclusive")] = None,
                       until: Annotated[datetime | None, Query(
                           description="Before this instant (RFC 3339)")] = None,
                       ) -> AdminEventsOut:
    """Events for support, newest first, filtered by account, event and time."""
    rows = await audit.search(runtime(request), user_id=user_id, event=event, since=since,
                              until=until, before_id=before, limit=limit)
    return AdminEventsOut(events=[AdminEventOut(
        id=r.id, user_id=r.user_id, actor=r.actor, event=r.event, created_at=r.created_at,
        ip=r.ip, user_agent=r.user_agent, data=r.data or {}) for r in rows])
