"""The user's own security activity: their audit events, newest first, with what the
activity page needs to tell each one in plain words.

An event names an operation by its id (``operation:<id>`` as a code's purpose, or
``operation`` in its data); the page says "a withdrawal", so the types of those
operations are read here, in one query. Only what :func:`audit.summary_of` lets a user
see is passed on, plus the names (never the values) of changed account fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepup.services import audit
from stepup.services.runtime import Runtime
from stepup.store import operations as operations_store


@dataclass(frozen=True)
class ActivityEvent:
    id: int
    event: str  # the audit event's kind ("code.failed")
    created_at: datetime
    ip: str | None
    user_agent: str | None
    facts: dict[str, Any]  # audit.summary_of: method, purpose, reason, second_factor…
    fields: tuple[str, ...]  # account.updated: the names of the changed fields
    operation_type: str | None  # the type of the operation the event is about, if any


def _operation_id(data: dict[str, Any]) -> str | None:
    purpose = data.get("purpose")
    if isinstance(purpose, str) and purpose.startswith("operation:"):
        return purpose.partition(":")[2]
    op = data.get("operation")
    return op if isinstance(op, str) else None


def _operation_type(data: dict[str, Any], known: dict[str, str]) -> str | None:
    if isinstance(data.get("type"), str) and data.get("operation"):
        return str(data["type"])  # operation.created / confirmed carry their type
    method = data.get("method")
    if isinstance(method, str) and method.startswith("operation:"):
        return method.partition(":")[2]  # a wrong PIN for an operation: "operation:<type>"
    op_id = _operation_id(data)
    return known.get(op_id) if op_id else None


async def recent(rt: Runtime, user_id: str, *, limit: int = 50) -> list[ActivityEvent]:
    """The account's last ``limit`` events, newest first."""
    events = await audit.events_of(rt, user_id, limit=limit)
    wanted = [op_id for e in events if (op_id := _operation_id(e.data or {}))]
    async with rt.db() as db:
        known = await operations_store.operation_types(db, user_id, wanted)
    out = []
    for e in events:
        data = e.data or {}
        fields = data.get("fields")
        out.append(ActivityEvent(
            id=e.id, event=e.event, created_at=e.created_at, ip=e.ip,
            user_agent=e.user_agent, facts=audit.summary_of(e),
            fields=tuple(f for f in fields if isinstance(f, str))
            if isinstance(fields, list) else (),
            operation_type=_operation_type(data, known)))
    return out
