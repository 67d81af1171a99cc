"""The development outbox, as JSON. Mounted only when ``STEPUP_ENV=development``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from stepup.store import codes
from stepup.web.deps import runtime

router = APIRouter(prefix="/dev", tags=["development"])


class OutboxEntry(BaseModel):
    channel: str
    to: str
    subject: str | None = None
    body: str
    created_at: str


class OutboxOut(BaseModel):
    messages: list[OutboxEntry]


def stored_form(to: str | None) -> str | None:
    """The filter as destinations are stored: e-mail lower-case, phones E.164. A phone may
    be typed with spaces or dashes, and a raw ``+`` in a query string arrives as a space."""
    text = (to or "").strip()
    if not text:
        return None
    if "@" in text:
        return text.lower()
    digits = "".join(c for c in text if c.isdigit())
    return f"+{digits}" if digits else text


async def outbox_entries(request: Request, to: str | None) -> list[OutboxEntry]:
    rt = runtime(request)
    async with rt.db() as db:
        rows = await codes.outbox_for(db, stored_form(to))
    return [OutboxEntry(channel=r.channel, to=r.to, subject=r.subject, body=r.body,
                        created_at=r.created_at.isoformat().replace("+00:00", "Z"))
            for r in rows]


@router.get("/outbox", response_model=OutboxOut, response_model_exclude_none=True)
async def outbox(request: Request,
                 to: str | None = Query(default=None, max_length=320,
                                        description="Only messages to this address")
                 ) -> OutboxOut:
    """Messages the outbox provider 'sent' (newest first)."""
    return OutboxOut(messages=await outbox_entries(request, to))
