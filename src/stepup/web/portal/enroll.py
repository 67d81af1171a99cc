"""Enabling a method (PIN, then what the method needs) and new backup codes.

Secrets shown here — the TOTP key and QR code, backup codes — travel only in the body of
the answer to a POST (sent with ``Cache-Control: no-store`` by the middleware), never in
a URL or a cookie. The pending TOTP enrollment is kept server-side, so the confirm form
that sits beside the QR code only sends the code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from stepup.domain.errors import DomainError, Forbidden
from stepup.methods import registry
from stepup.services import methods
from stepup.web import deps
from stepup.web.portal.auth import status_for
from stepup.web.portal.render import Page, form_data, logged_in, redirect, to_login

router = APIRouter()

# Apps that read the otpauth:// QR code, per mobile OS (seed 003: "select your OS type").
AUTHENTICATOR_APPS = {
    "Android": ["Google Authenticator", "Microsoft Authenticator", "Aegis Authenticator",
                "2FAS", "FreeOTP"],
    "iOS": ["Google Authenticator", "Microsoft Authenticator", "2FAS", "FreeOTP",
            "Ente Auth"],
}


def group_secret(secret: str, size: int = 4) -> str:
    """``JBSWY3DPEHPK3PXP`` → ``JBSW Y3DP EHPK 3PXP``: easier to type by hand."""
    return " ".join(secret[i:i + size] for i in range(0, len(secret), size))


def methods_url(done: str, method_type: str) -> str:
    return f"/settings/methods?done={done}&method={method_type}"


async def _is_enabled(page: Page, method_type: str) -> bool:
    assert page.user is not None
    views = await methods.list_views(page.rt, page.user.id)
    return any(v.type == method_type and v.enabled for v in views)


def _pin_form(page: Page, method_type: str, *, error: str | None = None,
              status_code: int = 200) -> Response:
    name = page.method_name(method_type)
    return page.render("enable_pin.html", status_code=status_code,
                       title=page._("Enable %(method)s", method=name),
                       method_type=method_type, error=error)


@router.get("/settings/methods/{method_type}/enable")
async def enable_page(method_type: str, request: Request) -> Response:
    page = await logged_in(request)
    if page is None:
        return to_login(request)
    if not registry.is_available(method_type):
        return page.not_found()
    if await _is_enabled(page, method_type):
        return redirect("/settings/methods")
    return _pin_form(page, method_type)


def _enroll_page(page: Page, method_type: str, body: dict[str, Any], *,
                 error: str | None = None, drift: bool = False,
                 status_code: int = 200) -> Response:
    """The method's own enrollment template: ``enroll/<type>.html``."""
    context: dict[str, Any] = {"method_type": method_type, "error": error, "drift": drift}
    if "secret" in body:
        context["secret_grouped"] = group_secret(str(body["secret"]))
        # segno's SVG: generated from our own otpauth URI, no user text in it.
        context["qr_svg"] = Markup(str(body["qr_svg"]))  # noqa: S704
        context["apps"] = AUTHENTICATOR_APPS
    if "codes" in body:
        context["codes"] = list(body["codes"])
    return page.render(f"enroll/{method_type}.html", status_code=status_code,
                       title=page._("Enable %(method)s", method=page.method_name(method_type)),
                       **context)


@router.post("/settings/methods/{method_type}/enable")
async def enable_submit(method_type: str, request: Request) -> Response:
    page = await logged_in(request)
    if page is None or page.user is None:
        return to_login(request)
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    if not registry.is_available(method_type):
        return page.not_found()
    try:
        start = await methods.begin_enrollment(page.rt, deps.actor(request), page.user.id,
                                               method_type, form.get("pin", "").strip(), {})
    except DomainError as err:
        return _pin_form(page, method_type, error=page.error_message(err),
                         status_code=status_for(err))
    return _enroll_page(page, method_type, start.body)


@router.post("/settings/methods/{method_type}/confirm")
async def confirm_submit(method_type: str, request: Request) -> Response:
    page = await logged_in(request)
    if page is None or page.user is None:
        return to_login(request)
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    if not registry.is_available(method_type):
        return page.not_found()
    try:
        await methods.confirm_enrollment(page.rt, deps.actor(request), page.user.id,
                                         method_type, form.get("code", ""))
    except DomainError as err:
        # The QR code is not shown again (the secret is not re-sent): the pending
        # enrollment still accepts a code, or the user starts again for a new key.
        return _enroll_page(page, method_type, {}, error=page.error_message(err),
                            drift="clock_drift_minutes" in err.extra,
                            status_code=status_for(err))
    return redirect(methods_url("enabled", method_type))


# --- new backup codes ------------------------------------------------------------------


def _regenerate_form(page: Page, *, error: str | None = None,
                     status_code: int = 200) -> Response:
    return page.render(
        "code_form.html", status_code=status_code, title=page._("Create new backup codes"),
        method_type="backup_codes", action="/settings/methods/backup_codes/regenerate",
        hidden={}, error=error, submit=page._("Verify"), sends_code=False,
        intro=page._("Enter one of your current backup codes. A new list of codes will be "
                     "created, and every old code will stop working."),
    )


@router.get("/settings/methods/backup_codes/regenerate")
async def regenerate_page(request: Request) -> Response:
    page = await logged_in(request)
    if page is None:
        return to_login(request)
    return _regenerate_form(page)


@router.post("/settings/methods/backup_codes/regenerate")
async def regenerate_submit(request: Request) -> Response:
    page = await logged_in(request)
    if page is None or page.user is None:
        return to_login(request)
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    try:
        codes = await methods.regenerate_backup_codes(page.rt, deps.actor(request),
                                                      page.user.id, form.get("code", ""))
    except DomainError as err:
        return _regenerate_form(page, error=page.error_message(err),
                                status_code=status_for(err))
    return page.render("enroll/backup_codes.html", title=page._("Your new backup codes"),
                       method_type="backup_codes", codes=codes, regenerated=True)
