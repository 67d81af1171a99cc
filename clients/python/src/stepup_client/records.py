"""The lifecycle's other answers: security events, lock lifts, recovery requests and
webhook deliveries (frozen dataclasses; times are aware UTC datetimes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stepup_client import _json as j

__all__ = ["Event", "EventsPage", "Recovery", "Unlocked", "WebhookDeliveries",
           "WebhookDelivery"]


@dataclass(frozen=True, slots=True)
class Event:
    """One security event of a user (the audit log), with the end user's ``ip`` and
    ``user_agent`` (in short) as your portal forwarded them."""

    id: int
    event: str
    created_at: datetime
    ip: str | None = None
    user_agent: str | None = None
    method: str | None = None
    purpose: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Event:
        d = j.obj(data)
        return cls(id=j.integer(d, "id"), event=j.string(d, "event"),
                   created_at=j.instant(d, "created_at"), ip=j.opt_str(d, "ip"),
                   user_agent=j.opt_str(d, "user_agent"), method=j.opt_str(d, "method"),
                   purpose=j.opt_str(d, "purpose"), details=j.opt_obj(d, "details") or {})


@dataclass(frozen=True, slots=True)
class EventsPage:
    """A page of events, newest first; ``next_cursor`` is None on the last page."""

    events: tuple[Event, ...]
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> EventsPage:
        d = j.obj(data)
        return cls(events=tuple(Event.from_json(e) for e in j.items(d, "events")),
                   next_cursor=j.opt_str(d, "next_cursor"))


@dataclass(frozen=True, slots=True)
class Unlocked:
    """The locks an unlock lifted, e.g. ``("method:totp",)`` (empty: none held)."""

    cleared: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> Unlocked:
        return cls(cleared=j.strings(j.obj(data), "cleared"))


@dataclass(frozen=True, slots=True)
class Recovery:
    """A lock-out recovery request. ``status``: ``requested``, ``checked``, ``approved``
    (waiting until ``effective_at``), ``completed``, ``rejected`` or ``cancelled``."""

    id: str
    status: str
    created_at: datetime
    checked_at: datetime | None = None
    decided_at: datetime | None = None
    effective_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> Recovery:
        d = j.obj(data)
        return cls(id=j.string(d, "id"), status=j.string(d, "status"),
                   created_at=j.instant(d, "created_at"),
                   checked_at=j.opt_instant(d, "checked_at"),
                   decided_at=j.opt_instant(d, "decided_at"),
                   effective_at=j.opt_instant(d, "effective_at"),
                   completed_at=j.opt_instant(d, "completed_at"),
                   cancelled_at=j.opt_instant(d, "cancelled_at"))


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook delivery to your app. ``status``: ``pending`` (due, being sent or
    backing off), ``delivered`` or ``failed`` (given up; :meth:`redeliver_webhook`)."""

    id: str
    event: str
    status: str
    attempts: int = 0
    url: str | None = None
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> WebhookDelivery:
        d = j.obj(data)
        if isinstance(d.get("delivery"), dict):  # an answer that wraps the delivery
            d = d["delivery"]
        return cls(id=j.string(d, "id"), event=j.opt_str(d, "event") or "",
                   status=j.opt_str(d, "status") or "pending",
                   attempts=j.opt_int(d, "attempts") or 0, url=j.opt_str(d, "url"),
                   created_at=j.opt_instant(d, "created_at"),
                   next_attempt_at=j.opt_instant(d, "next_attempt_at"),
                   delivered_at=j.opt_instant(d, "delivered_at"),
                   last_error=j.opt_str(d, "last_error"))


@dataclass(frozen=True, slots=True)
class WebhookDeliveries:
    """A page of deliveries, newest first; ``next_cursor`` is None on the last page."""

    deliveries: tuple[WebhookDelivery, ...]
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> WebhookDeliveries:
        d = j.obj(data)
        return cls(deliveries=tuple(WebhookDelivery.from_json(x)
                                    for x in j.items(d, "deliveries")),
                   next_cursor=j.opt_str(d, "next_cursor"))
