"""Verifying the account e-mail on the portal: the code from the sign-up message (or a
new one: "Send again"), and the page the message's link opens.

The link's page only shows the address and a button: the address is verified by the
button's POST, because mail scanners and link previews follow every GET.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from stepup.domain.destinations import mask
from stepup.domain.errors import DomainError, RateLimited
from stepup.methods.base import ChallengeSent
from stepup.services import email_verification
from stepup.web import deps
from stepup.web.portal.plumbing import (
    AnyPage,
    Refusal,
    SignedIn,
    UserForm,
    checked,
    portal_router,
    refused,
    status_for,
)
from stepup.web.portal.render import Page, redirect

router = portal_router()

PAGE = "/settings/email"
VERIFIED = "/settings/methods?done=email_verified"


async def _verify_page(page: Page, *, error: str | None = None,
                       sent: ChallengeSent | None = None, wait: int = 0,
                       status_code: int = 200) -> Response:
    assert page.user is not None
    waiting = sent is not None or await email_verification.waiting(page.rt, page.user.id)
    return page.render("email/verify.html", status_code=status_code,
                       title=page._("Verify your e-mail address"), error=error, sent=sent,
                       wait=sent.resend_in if sent else wait,
                       address=mask("email", page.user.email),
                       hours=email_verification.TTL_HOURS, waiting=waiting)


@router.get(PAGE)
async def verify_page(page: SignedIn) -> Response:
    if page.me.email_verified:
        return redirect("/settings/methods")
    return await _verify_page(page)


@router.post(PAGE + "/send")
async def send_again(request: Request, page: SignedIn, form: UserForm) -> Response:
    if page.me.email_verified:
        return redirect("/settings/methods")
    try:
        sent = await email_verification.send(page.rt, deps.actor(request), page.me.id)
    except DomainError as err:
        wait = (err.retry_after or 0) if isinstance(err, RateLimited) else 0
        return await _verify_page(page, error=page.send_error(err), wait=wait,
                            status_code=status_for(err))
    return await _verify_page(page, sent=sent)


@router.post(PAGE + "/confirm")
async def confirm(request: Request, page: SignedIn, form: UserForm) -> Response:
    async def redraw(r: Refusal) -> Response:
        return await _verify_page(page, error=r.message, status_code=r.status)

    await refused(page, email_verification.confirm_code(
        page.rt, deps.actor(request), page.me.id, form.get("code", "")), redraw)
    return redirect(VERIFIED)


# --- the link from the message ---------------------------------------------------------


def _link_page(page: Page, token: str, *, address: str | None = None,
               error: str | None = None, done: bool = False, status_code: int = 200
               ) -> Response:
    return page.render("email/link.html", status_code=status_code,
                       title=page._("Verify your e-mail address"), token=token,
                       address=address, error=error, done=done)


@router.get(email_verification.LINK_PATH + "{token}")
async def link_page(token: str, page: AnyPage) -> Response:
    address = await refused(page, email_verification.link_address(page.rt, token),
                            lambda r: _link_page(page, "", error=r.message,
                                                 status_code=r.status))
    return _link_page(page, token, address=address)


@router.post(email_verification.LINK_PATH + "{token}")
async def link_confirm(request: Request, token: str, page: AnyPage) -> Response:
    await checked(page)
    address = await refused(page, email_verification.confirm_link(
        page.rt, deps.actor(request), token),
        lambda r: _link_page(page, "", error=r.message, status_code=r.status))
    return _link_page(page, "", address=address, done=True)
