"""Switching Login/Withdrawal protection On or Off, and disabling a method.

Each needs a current code from that same method (seed 000, steps 4–6): the page asks
for it, and for a method that sends its codes it offers a "Send code" button first.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepup.domain.errors import DomainError, Forbidden
from stepup.methods import registry
from stepup.services import methods
from stepup.web import deps
from stepup.web.portal.auth import status_for
from stepup.web.portal.enroll import methods_url
from stepup.web.portal.render import (
    SENDS_CODES,
    Page,
    form_data,
    logged_in,
    redirect,
    to_login,
)

router = APIRouter()


def _switch_args(page: Page, values: Mapping[str, str]) -> tuple[str, bool] | None:
    op = values.get("op", "")
    if op not in page.rt.settings.operations:
        return None
    return op, values.get("on") == "1"


def _switch_form(page: Page, method_type: str, op: str, on: bool, *, error: str | None = None,
                 notice: str | None = None, status_code: int = 200) -> Response:
    values = {"method": page.method_name(method_type), "operation": page.operation_name(op)}
    if on:
        title = page._("Turn on %(operation)s protection", **values)
        intro = page._("Once this is on, you will be asked for a code from %(method)s when "
                       "you confirm this operation. Enter a current code from %(method)s, "
                       "and then click Verify.", **values)
    else:
        title = page._("Turn off %(operation)s protection", **values)
        intro = page._("%(method)s will no longer be asked for on this operation. Enter a "
                       "current code from %(method)s, and then click Verify.", **values)
    return page.render(
        "code_form.html", status_code=status_code, title=title, intro=intro,
        method_type=method_type, action=f"/settings/methods/{method_type}/switch",
        hidden={"op": op, "on": "1" if on else "0"}, error=error, notice=notice,
        submit=page._("Verify"), sends_code=method_type in SENDS_CODES,
    )


def _disable_form(page: Page, method_type: str, *, error: str | None = None,
                  notice: str | None = None, status_code: int = 200) -> Response:
    name = page.method_name(method_type)
    if method_type == "backup_codes":
        intro = page._("Enter one of your backup codes, and then click Disable. All your "
                       "backup codes will stop working.")
    else:
        intro = page._("Enter a current code from %(method)s, and then click Disable.",
                       method=name)
    return page.render(
        "code_form.html", status_code=status_code, title=page._("Disable %(method)s",
                                                                method=name),
        intro=intro, method_type=method_type,
        action=f"/settings/methods/{method_type}/disable", hidden={}, error=error,
        notice=notice, submit=page._("Disable"), danger=True,
        sends_code=method_type in SENDS_CODES,
        regenerate=method_type == "backup_codes",
    )


async def _page(request: Request, method_type: str) -> Page | Response:
    page = await logged_in(request)
    if page is None or page.user is None:
        return to_login(request)
    if not registry.is_available(method_type):
        return page.not_found()
    return page


@router.get("/settings/methods/{method_type}/switch")
async def switch_page(method_type: str, request: Request) -> Response:
    page = await _page(request, method_type)
    if not isinstance(page, Page):
        return page
    args = _switch_args(page, request.query_params)
    if args is None:
        return page.not_found()
    return _switch_form(page, method_type, *args)


@router.post("/settings/methods/{method_type}/switch")
async def switch_submit(method_type: str, request: Request) -> Response:
    page = await _page(request, method_type)
    if not isinstance(page, Page):
        return page
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    args = _switch_args(page, form)
    if args is None:
        return page.not_found()
    op, on = args
    assert page.user is not None
    try:
        await methods.switch(page.rt, deps.actor(request), page.user.id, method_type,
                             {op: on}, form.get("code", ""))
    except DomainError as err:
        return _switch_form(page, method_type, op, on, error=page.error_message(err),
                            status_code=status_for(err))
    return redirect(methods_url("switched", method_type))


@router.get("/settings/methods/{method_type}/disable")
async def disable_page(method_type: str, request: Request) -> Response:
    page = await _page(request, method_type)
    if not isinstance(page, Page):
        return page
    return _disable_form(page, method_type)


@router.post("/settings/methods/{method_type}/disable")
async def disable_submit(method_type: str, request: Request) -> Response:
    page = await _page(request, method_type)
    if not isinstance(page, Page):
        return page
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    assert page.user is not None
    try:
        await methods.disable(page.rt, deps.actor(request), page.user.id, method_type,
                              form.get("code", ""))
    except DomainError as err:
        return _disable_form(page, method_type, error=page.error_message(err),
                             status_code=status_for(err))
    return redirect(methods_url("disabled", method_type))


@router.post("/settings/methods/{method_type}/send-code")
async def send_code(method_type: str, request: Request) -> Response:
    """An out-of-band method sends a fresh code for the switch or Disable form."""
    page = await _page(request, method_type)
    if not isinstance(page, Page):
        return page
    form = await form_data(request)
    try:
        page.check_csrf(form.get("csrf_token"))
    except Forbidden as err:
        return page.forbidden(err)
    assert page.user is not None
    error = notice = None
    try:
        sent = await methods.challenge(page.rt, deps.actor(request), page.user.id, method_type)
        notice = page._("We sent a code to %(to)s.", to=sent.sent_to)
    except DomainError as err:
        error = page.error_message(err)
    args = _switch_args(page, form)
    if args is not None:
        return _switch_form(page, method_type, *args, error=error, notice=notice)
    return _disable_form(page, method_type, error=error, notice=notice)
