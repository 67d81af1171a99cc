"""The development outbox as a page: the messages the outbox provider "sent".

Development only: the outbox holds live codes, so in production this page does not
exist (404), whatever router includes it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from stepup.methods import registry
from stepup.store import codes
from stepup.web.api.dev import stored_form
from stepup.web.portal.plumbing import AnyPage, portal_router
from stepup.web.portal.render import Page

router = portal_router(include_in_schema=False)  # a page, not part of the JSON API



def channel_label(channel: str) -> str:
    """A message's channel as the outbox shows it ("E-mail"): the method's descriptor."""
    d = registry.descriptor(channel)
    return (d.channel_label if d is not None else None) or channel


def available(page: Page) -> bool:
    return not page.rt.settings.is_production


@router.get("/dev/outbox")
async def outbox_page(request: Request, page: AnyPage) -> Response:
    if not available(page):
        return page.not_found()
    to = (request.query_params.get("to") or "").strip()[:320]
    wanted = stored_form(to)
    async with page.rt.db() as db:
        rows = await codes.outbox_for(db, wanted)
    messages = [{"channel": channel_label(r.channel), "to": r.to,
                 "subject": r.subject, "body": r.body,
                 "time": r.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                 "iso": r.created_at.isoformat().replace("+00:00", "Z")} for r in rows]
    return page.render("dev_outbox.html", title=page._("Development outbox"), to=to,
                       messages=messages)
