"""Settings → Recent security activity: the user's own audit events, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response

from stepup.services import audit
from stepup.web.portal.devices import short_agent
from stepup.web.portal.plumbing import SignedInReturning, portal_router
from stepup.web.portal.render import N_, when

router = portal_router()
SHOWN = 50

EVENT_NAMES = {
    "account.created": N_("Account created"),
    "account.email_verified": N_("E-mail address verified"),
    "login.succeeded": N_("Logged in"),
    "login.password_passed": N_("Password accepted, security code asked"),
    "login.password_failed": N_("Wrong password"),
    "code.sent": N_("Security code sent"),
    "code.failed": N_("Wrong security code"),
    "code.verified": N_("Security code accepted"),
    "code.replayed": N_("A security code already accepted was sent again"),
    "pin.failed": N_("Wrong PIN"),
    "pin.locked": N_("PIN locked"),
    "method.enrollment_started": N_("Method setup started"),
    "method.enabled": N_("Method enabled"),
    "method.disabled": N_("Method disabled"),
    "method.protection_switched": N_("Protection settings changed"),
    "passkey.added": N_("Passkey added"),
    "passkey.removed": N_("Passkey removed"),
    "passkey.renamed": N_("Passkey renamed"),
    "method.locked": N_("Method locked"),
    "account.locked": N_("Account locked"),
    "account.unlocked": N_("Account unlocked by support"),
    "backup_codes.regenerated": N_("New backup codes created"),
    "device.remembered": N_("Device remembered"),
    "device.forgotten": N_("Remembered devices forgotten"),
    "delivery.failed": N_("A security code could not be sent"),
    "operation.created": N_("Withdrawal started"),
    "operation.pin_passed": N_("Withdrawal PIN accepted"),
    "operation.confirmed": N_("Withdrawal confirmed"),
    "recovery.requested": N_("Reset of two-factor authentication requested"),
    "recovery.approved": N_("Reset of two-factor authentication approved"),
    "recovery.rejected": N_("Reset of two-factor authentication rejected"),
    "recovery.cancelled": N_("Reset of two-factor authentication cancelled"),
    "recovery.completed": N_("Two-factor authentication reset"),
    "notice.failed": N_("A security notice could not be delivered"),
}


@dataclass
class ActivityRow:
    id: int
    at: str
    iso: str
    what: str
    method: str | None
    ip: str
    device: str
    new_device: bool


@router.get("/settings/activity")
async def activity_page(page: SignedInReturning) -> Response:
    rows = []
    for e in await audit.events_of(page.rt, page.me.id, limit=SHOWN):
        facts = audit.summary_of(e)
        name = EVENT_NAMES.get(e.event)
        method = facts.get("method")
        rows.append(ActivityRow(
            id=e.id, at=when(e.created_at), iso=audit.iso(e.created_at),
            what=page._(name) if name else e.event,
            method=page.method_name(method) if isinstance(method, str) else None,
            ip=e.ip or "", device=short_agent(page, e.user_agent) if e.user_agent else "",
            new_device=bool(facts.get("new_device"))))
    return page.render("activity.html", title=page._("Recent security activity"),
                       events=rows, shown=SHOWN)
