"""Settings → Recent security activity: the user's own audit events, newest first.

Each event is told in a whole sentence of the page's language (activity_texts.py), with
the method it concerns, when (in the browser's time zone, named on the page; UTC when
the browser has not told it), from which address and which browser. One card per event:
a list, not a table, so that a phone shows each event whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response

from stepup.services import activity
from stepup.web import i18n
from stepup.web.portal import activity_texts
from stepup.web.portal.devices import short_agent
from stepup.web.portal.plumbing import SignedInReturning, UserPage, portal_router
from stepup.web.portal.render import iso

router = portal_router()
SHOWN = 50


@dataclass
class ActivityRow:
    id: int
    kind: str
    at: str
    iso: str
    what: str
    method: str | None
    ip: str
    device: str
    new_device: bool


def describe(page: UserPage, event: activity.ActivityEvent) -> str:
    """The event in a sentence of the page's language."""
    text = activity_texts.sentence(event)
    if text is None:  # a kind written after this page: say so, never show a raw id
        return page._("Other security event")
    operation = page.operation_name(event.operation_type) if event.operation_type else ""
    return page._(text, operation=operation) if "%(operation)s" in text else page._(text)


@router.get("/settings/activity")
async def activity_page(page: SignedInReturning) -> Response:
    tz_cookie = page.request.cookies.get(i18n.TZ_COOKIE)
    zone = i18n.client_zone(tz_cookie)
    rows = []
    for e in await activity.recent(page.rt, page.me.id, limit=SHOWN):
        method = activity_texts.method_of(e)
        rows.append(ActivityRow(
            id=e.id, kind=e.event, at=i18n.format_when(e.created_at, zone, page.lang),
            iso=iso(e.created_at), what=describe(page, e),
            method=page.method_name(method) if method else None,
            ip=e.ip or "", device=short_agent(page, e.user_agent) if e.user_agent else "",
            new_device=bool(e.facts.get("new_device"))))
    city = i18n.zone_city(zone, page.lang) if zone is not None else None
    if zone is not None and city not in (None, zone.key, "UTC"):
        zone_text = page._("Times are shown in your time zone: %(city)s (%(zone)s).",
                           city=city, zone=zone.key)
    elif zone is not None:
        zone_text = page._("Times are shown in your time zone: %(zone)s.", zone=zone.key)
    else:
        zone_text = page._("Times are shown in UTC (coordinated universal time): your "
                           "browser has not told us its time zone.")
    return page.render("activity.html", title=page._("Recent security activity"),
                       events=rows, shown=SHOWN, zone_text=zone_text,
                       # No zone cookie at all: portal.js sets it and draws the page again.
                       zone_missing=tz_cookie is None)
