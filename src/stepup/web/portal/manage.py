"""Switching Login/Withdrawal protection On or Off, and disabling a method.

Each needs a current code from that same method (seed 000, steps 4–6): the page asks
for it, and for a method that sends its codes it offers a "Send code" button first, which
sends to that method's own phone number or address (never to another channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from stepup.domain.errors import DomainError, RateLimited
from stepup.domain.refusals import held
from stepup.methods import registry
from stepup.methods.base import ChallengeSent, IssuesCodeSets, MethodView
from stepup.services import methods
from stepup.web import deps
from stepup.web.portal.enroll import method_view, methods_url, oob_code_page
from stepup.web.portal.plumbing import (
    AvailableMethod,
    Refusal,
    SignedIn,
    UserForm,
    not_found,
    portal_router,
    refused,
    status_for,
)
from stepup.web.portal.protects import chosen
from stepup.web.portal.render import (
    Page,
    browser_ceremony,
    descriptor,
    passkey_request,
    redirect,
    sends_codes,
)

router = portal_router()


@dataclass
class Sending:
    """The "Send code" part of a code form: where codes go, and the last send."""

    destination: str | None = None
    sent: ChallengeSent | None = None
    wait: int = 0  # seconds before another code may be sent


async def sending(page: Page, method_type: str, refusal: Refusal | None = None
                  ) -> Sending | None:
    """Where a sending method's codes go, before any code was asked for on this page
    (after a refused step: as that step read it)."""
    if not sends_codes(method_type):
        return None
    view = (held(refusal.error, MethodView) if refusal else None) or await method_view(
        page, method_type)
    return Sending(destination=view.destination if view else None)


def _switch_args(page: Page, values: Mapping[str, str]) -> tuple[str, bool] | None:
    op = values.get("op", "")
    if op not in page.rt.settings.operations:
        return None
    return op, values.get("on") == "1"


async def manage_passkey(page: Page, method_type: str
                         ) -> tuple[dict[str, Any] | None, str | None]:
    """A form that manages passkeys (a switch, Disable, removing one): the request its
    answer is for (purpose manage); nothing for other methods."""
    assert page.user is not None
    user_id = page.user.id
    return await passkey_request(page, method_type, lambda t: methods.challenge(
        page.rt, deps.actor(page.request), user_id, t))


async def _switch_form(page: Page, method_type: str, op: str, on: bool, *,
                       error: str | None = None, send: Sending | None = None,
                       status_code: int = 200) -> Response:
    values = {"operation": page.operation_name(op)}
    sends = sends_codes(method_type)
    passkey, problem = await manage_passkey(page, method_type)
    title = (page._("Turn on %(operation)s protection", **values) if on
             else page._("Turn off %(operation)s protection", **values))
    if browser_ceremony(method_type):
        intro = page._("Click Verify, then confirm with your passkey.")
    else:
        # Two whole sentences: what changes (the method's own words), then what to do.
        intro = " ".join((
            page.method_sentence(method_type, "switch_on" if on else "switch_off"),
            page._("Click Send code, enter the code we sent, and then click Verify.")
            if sends else page._("Enter a current code, and then click Verify.")))
    return page.render(
        "code_form.html", status_code=status_code, title=title, intro=intro,
        method_type=method_type, action=f"/settings/methods/{method_type}/switch",
        hidden={"op": op, "on": "1" if on else "0"}, error=error or problem, send=send,
        passkey=passkey,
        submit=page._("Verify"), sends_code=sends_codes(method_type),
    )


async def _disable_form(page: Page, method_type: str, *, error: str | None = None,
                        send: Sending | None = None, status_code: int = 200) -> Response:
    passkey, problem = await manage_passkey(page, method_type)
    d = descriptor(method_type)
    if browser_ceremony(method_type):
        intro = page._("Click Disable, then confirm with your passkey.")
    elif d is not None and d.disable_intro:
        intro = page._(d.disable_intro)
    elif sends_codes(method_type):
        intro = page._("Click Send code. Enter the code we sent, and then click Disable.")
    else:
        intro = page._("Enter a current code, and then click Disable.")
    return page.render(
        "code_form.html", status_code=status_code,
        title=page.method_sentence(method_type, "disable"),
        intro=intro, method_type=method_type,
        action=f"/settings/methods/{method_type}/disable", hidden={}, error=error or problem,
        send=send, submit=page._("Disable"), danger=True, passkey=passkey,
        sends_code=sends_codes(method_type),
        regenerate=isinstance(registry.find(method_type), IssuesCodeSets),
    )


@router.get("/settings/methods/{method_type}/switch")
async def switch_page(request: Request, page: SignedIn, method_type: AvailableMethod
                      ) -> Response:
    args = _switch_args(page, request.query_params)
    if args is None:
        not_found(page)
    return await _switch_form(page, method_type, *args, send=await sending(page, method_type))


@router.post("/settings/methods/{method_type}/switch")
async def switch_submit(page: SignedIn, method_type: AvailableMethod, form: UserForm
                        ) -> Response:
    args = _switch_args(page, form)
    if args is None:
        not_found(page)
    op, on = args

    async def redraw(r: Refusal) -> Response:
        return await _switch_form(page, method_type, op, on, error=r.message,
                                  send=await sending(page, method_type, r),
                                  status_code=r.status)

    await refused(page, methods.switch(page.rt, deps.actor(page.request), page.me.id,
                                       method_type, {op: on}, form.get("code", "")), redraw)
    return redirect(methods_url("switched", method_type))


@router.get("/settings/methods/{method_type}/disable")
async def disable_page(page: SignedIn, method_type: AvailableMethod) -> Response:
    return await _disable_form(page, method_type, send=await sending(page, method_type))


@router.post("/settings/methods/{method_type}/disable")
async def disable_submit(page: SignedIn, method_type: AvailableMethod, form: UserForm
                         ) -> Response:
    async def redraw(r: Refusal) -> Response:
        return await _disable_form(page, method_type, error=r.message,
                                   send=await sending(page, method_type, r),
                                   status_code=r.status)

    await refused(page, methods.disable(page.rt, deps.actor(page.request), page.me.id,
                                        method_type, form.get("code", "")), redraw)
    return redirect(methods_url("disabled", method_type))


@router.post("/settings/methods/{method_type}/send-code")
async def send_code(page: SignedIn, method_type: AvailableMethod, form: UserForm
                    ) -> Response:
    """An out-of-band method sends a fresh code: for the switch or Disable form, or
    (``next=enroll``) again for the enrollment waiting for its code."""
    if not sends_codes(method_type):
        not_found(page)
    error, status, sent, wait = None, 200, None, 0
    try:
        sent = await methods.challenge(page.rt, deps.actor(page.request), page.me.id,
                                       method_type)
    except DomainError as err:
        error, status, wait = page.send_error(err), status_for(err), err.retry_after or 0
        if not isinstance(err, RateLimited):
            wait = 0
    view = await method_view(page, method_type)
    if form.get("next") == "enroll" or (view is not None and view.pending):
        if view is not None and view.enabled:
            return redirect("/settings/methods")
        if view is None or not view.pending:
            # Nothing is waiting (the failed first send dropped it): back to step 1.
            return redirect(f"/settings/methods/{method_type}/enable")
        # The resend posts the code form (its "Use it for" boxes too): keep them as ticked.
        ticked = chosen(page, form)
        if sent is not None:
            return await oob_code_page(page, method_type, sent_to=sent.sent_to,
                                       expires_in=sent.expires_in, resend_in=sent.resend_in,
                                       ticked=ticked)
        return await oob_code_page(page, method_type, sent_to=view.destination,
                                   waiting=True, resend_in=wait, error=error,
                                   ticked=ticked, status_code=status)
    send = Sending(destination=view.destination if view else None, sent=sent,
                   wait=sent.resend_in if sent else wait)
    args = _switch_args(page, form)
    if args is not None:
        return await _switch_form(page, method_type, *args, error=error, send=send,
                            status_code=status)
    return await _disable_form(page, method_type, error=error, send=send, status_code=status)
