"""Settings → Authentication methods: the security identities and one section per method."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from stepup.methods import registry
from stepup.methods.base import MethodView
from stepup.services import accounts, methods, operations, recovery
from stepup.web.portal.devices import device_rows
from stepup.web.portal.plumbing import SignedIn, portal_router
from stepup.web.portal.protects import protection_sentence
from stepup.web.portal.render import N_

router = portal_router()

# Notices after a flow finishes (``?done=``): the flag is only a choice of message; every
# number shown beside it is read from the store, never from the URL.
# "enabled", "disabled" and "switched" are each method's own sentences (its descriptor).
METHOD_DONE = frozenset({"enabled", "disabled", "switched"})
DONE_MESSAGES = {
    "passkey_added": N_("The passkey was added."),
    "passkey_removed": N_("The passkey was removed."),
    "passkey_renamed": N_("The passkey was renamed."),
    "saved": N_("Your new backup codes are active. The old ones no longer work."),
    "device_forgotten": N_("The device is forgotten: it will be asked for a security code "
                           "at its next login."),
    "devices_forgotten": N_("All remembered devices are forgotten: each will be asked for "
                            "a security code at its next login."),
    "email_verified": N_("Your e-mail address is verified."),
}
# Notices that are not about one method.
GENERAL_DONE = frozenset({"saved", "device_forgotten", "devices_forgotten", "email_verified"})


@dataclass
class Section:
    type: str
    name: str
    blurb: str
    available: bool
    view: MethodView | None
    low: bool = False

    @property
    def enabled(self) -> bool:
        return self.view is not None and self.view.enabled


@router.get("/settings/methods")
async def methods_page(request: Request, page: SignedIn) -> Response:
    rt, user = page.rt, page.me
    views = {v.type: v for v in await methods.list_views(rt, user.id)}
    warn_at = rt.settings.backup_codes_warn_at
    sections = []
    for d in registry.descriptors():
        t = d.type
        view = views.get(t)
        low = bool(view and view.enabled and view.remaining is not None
                   and view.remaining <= warn_at)
        sections.append(Section(type=t, name=page._(d.name), blurb=page._(d.blurb),
                                available=registry.is_available(t) and view is not None,
                                view=view, low=low))
    enabled = [s for s in sections if s.enabled]
    protecting = {op: [s.name for s in enabled if s.view and s.view.protects.get(op)]
                  for op in rt.settings.operations}
    # What confirms each operation, as the operation itself will ask it (one policy).
    confirming = {op: await operations.confirmation(rt, user, op)
                  for op in rt.settings.operations if op != "login"}

    notice = None
    done = request.query_params.get("done")
    method = request.query_params.get("method", "")
    if done in METHOD_DONE and registry.descriptor(method):
        notice = page.method_sentence(method, done)
    elif done in DONE_MESSAGES and (registry.descriptor(method) or done in GENERAL_DONE):
        notice = page._(DONE_MESSAGES[done], method=page.method_name(method))
    enabled_now = views.get(method)
    if notice and done == "enabled" and enabled_now is not None and enabled_now.enabled:
        # What it protects, read from the store: a sentence of its own, never glued.
        notice += " " + protection_sentence(page, enabled_now.protects)
    # The profile's phone: the one a method verified (SMS), while that method is on.
    phone = next((v.destination for d in registry.descriptors() if d.verifies_phone
                  and (v := views.get(d.type)) is not None and v.enabled), None)
    backup = next((views[d.type] for d in registry.descriptors()
                   if d.login_fallback and d.type in views), None)
    low_after_login = None
    if request.query_params.get("backup_low") and backup and backup.remaining is not None:
        low_after_login = backup.remaining

    # After a support reset (recovery) nothing else works until a method is set up; after
    # a backup-code login, the user is asked to set up what they lost.
    must_enroll = await recovery.needs_enrolment(rt, user.id)
    reconfigure = bool(request.query_params.get("reconfigure")) and not must_enroll
    return page.render(
        "methods.html", title=page._("Authentication methods"),
        must_enroll=must_enroll, reconfigure=reconfigure,
        profile=accounts.profile(user), sections=sections, enabled=enabled,
        protecting=protecting, confirming=confirming, operations=rt.settings.operations,
        notice=notice,
        low_after_login=low_after_login, phone=phone, devices=await device_rows(page),
        remember_days=rt.settings.remember_device_days, when=page.local_when,
    )
