"""Staff log in to the support console: the password, then any method protecting their
login (the authenticator app, a passkey), through the login flow everyone goes through
(services/staff.py).

While the second factor is due, the flow's ``login_token`` lives in a short-lived cookie
of the console's own (``stepup_staff_login``); the session a completed login starts lives
in ``stepup_staff``. Neither opens StepUp's own pages, nor their cookies the console.
Before the session, forms bind their CSRF token to the portal's random pre-session
cookie; after it, to the staff session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from stepup.domain.errors import AccountLocked, DomainError, NotAuthenticated
from stepup.domain.refusals import held
from stepup.methods.base import ChallengeSent
from stepup.services import staff
from stepup.web import deps
from stepup.web.portal.plumbing import (
    PageAnswer,
    Refusal,
    VisitorForm,
    VisitorPage,
    checked,
    code_sent,
    portal_router,
    refused,
)
from stepup.web.portal.render import (
    LOGIN_COOKIE_MAX_AGE,
    Page,
    delete_cookie,
    login_fallback,
    passkey_request,
    redirect,
    sends_codes,
    set_cookie,
)

router = portal_router()  # included by the console's router, under /admin

STAFF_COOKIE = "stepup_staff"
# The login flow between the password and the second factor (its login_token).
STAFF_LOGIN_COOKIE = "stepup_staff_login"


def session_token(request: Request) -> str | None:
    return request.cookies.get(deps.cookie_name(deps.runtime(request), STAFF_COOKIE))


def login_token(request: Request) -> str | None:
    return request.cookies.get(deps.cookie_name(deps.runtime(request), STAFF_LOGIN_COOKIE))


def to_login(request: Request) -> Response:
    response = redirect("/admin/login")
    delete_cookie(response, deps.runtime(request), STAFF_COOKIE)
    delete_cookie(response, deps.runtime(request), STAFF_LOGIN_COOKIE)
    return response


def _login_form(page: Page, *, email: str = "", error: str | None = None,
                notice: str | None = None, status_code: int = 200) -> Response:
    return page.render("admin/login.html", status_code=status_code,
                       title=page._("Support console"), email=email, error=error,
                       notice=notice, staff=None)


@router.get("/login")
async def login_page(request: Request, page: VisitorPage) -> Response:
    notice = page._("You have logged out.") if request.query_params.get("bye") else None
    return _login_form(page, notice=notice)


@router.post("/login")
async def login_submit(request: Request, page: VisitorPage, form: VisitorForm) -> Response:
    email = form.get("email", "").strip()
    result = await refused(page, staff.password_step(page.rt, deps.actor(request), email,
                                                     form.get("password", "")),
                           lambda r: _login_form(page, email=email, error=r.message,
                                                 status_code=r.status))
    response = redirect("/admin/second-factor")
    set_cookie(response, page.rt, STAFF_LOGIN_COOKIE, result.login_token or "",
               samesite="strict", max_age=LOGIN_COOKIE_MAX_AGE)
    return page.finish(response)


async def _flow(request: Request) -> str:
    """The login_token of a staff login whose second factor is still to come."""
    token = login_token(request)
    if not token:
        raise PageAnswer(to_login(request))
    return token


LoginFlowToken = Annotated[str, Depends(_flow)]


async def _second_factor_form(page: Page, token: str, methods: list[dict[str, Any]],
                              chosen: str | None, *, error: str | None = None,
                              sent: ChallengeSent | None = None, wait: int = 0,
                              status_code: int = 200) -> Response:
    types = [m["type"] for m in methods]
    if chosen not in types:
        chosen = next((t for t in types if not login_fallback(t)), types[0] if types else None)
    current = next((m for m in methods if m["type"] == chosen), None)
    choices = sorted(methods, key=lambda m: login_fallback(m["type"]))
    passkey, problem = await passkey_request(page, chosen, lambda t: staff.challenge(
        page.rt, deps.actor(page.request), token, t))
    return page.render("second_factor.html", status_code=status_code, base="/admin",
                       title=page._("Enter a security code"), current=current,
                       choices=choices if len(choices) > 1 else [], error=error or problem,
                       sent=sent, wait=sent.resend_in if sent else wait,
                       sends_code=sends_codes(chosen), passkey=passkey, staff=None)


async def _methods_or_login(page: Page, token: str) -> list[dict[str, Any]]:
    try:
        return await staff.flow_methods(page.rt, token)
    except DomainError:
        raise PageAnswer(to_login(page.request)) from None


@router.get("/second-factor")
async def second_factor_page(request: Request, page: VisitorPage,
                             token: LoginFlowToken) -> Response:
    if session_token(request):
        try:
            await staff.resolve(page.rt, session_token(request))
            return redirect("/admin")
        except NotAuthenticated:
            pass
    methods = await _methods_or_login(page, token)
    return await _second_factor_form(page, token, methods,
                                     request.query_params.get("method"))


@router.post("/second-factor")
async def second_factor_submit(request: Request, page: VisitorPage, form: VisitorForm,
                               token: LoginFlowToken) -> Response:
    method = form.get("method", "")

    async def redraw(r: Refusal) -> Response:
        # The methods the refused step read itself; none (the flow is over) or a locked
        # account: back to the password.
        methods = held(r.error, list)
        if methods is None or isinstance(r.error, NotAuthenticated | AccountLocked):
            return to_login(request)
        return await _second_factor_form(page, token, methods, method, error=r.message,
                                         status_code=r.status)

    session = await refused(page, staff.second_factor(page.rt, deps.actor(request), token,
                                                      method, form.get("code", "")), redraw)
    response = redirect("/admin")
    set_cookie(response, page.rt, STAFF_COOKIE, session, samesite="strict")
    delete_cookie(response, page.rt, STAFF_LOGIN_COOKIE)
    return response


@router.post("/second-factor/send")
async def second_factor_send(request: Request, page: VisitorPage, form: VisitorForm,
                             token: LoginFlowToken) -> Response:
    """Ask a method that sends codes to send one for this login."""
    method = form.get("method", "")
    done = await code_sent(page, staff.challenge(page.rt, deps.actor(request), token, method),
                           lambda: to_login(request))
    methods = await _methods_or_login(page, token)
    return await _second_factor_form(page, token, methods, method, error=done.error,
                                     sent=done.sent, wait=done.wait, status_code=done.status)


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        auth = await staff.resolve(deps.runtime(request), session_token(request))
    except NotAuthenticated:
        return to_login(request)  # a login still at its second factor: start over
    page = Page(request, session_id="staff:" + auth.session.id)
    await checked(page)
    await staff.logout(page.rt, auth.session.id)
    response = redirect("/admin/login?bye=1")
    delete_cookie(response, page.rt, STAFF_COOKIE)
    delete_cookie(response, page.rt, STAFF_LOGIN_COOKIE)
    return response
