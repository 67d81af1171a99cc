"""Settings → Account security (change the password, change the PIN) and "Forgot
password?" (services/account_security.py).

The reset link's token is taken out of the address at once: ``GET /password/reset?token=``
keeps it in a short-lived HttpOnly cookie and redirects to ``/password/reset``, so it does
not stay in the browser's history or reach another page's ``Referer``. A reset logs
nobody in: the answer to the new password ends with a link to the login page, and says
that a security code is still asked there only when a method protects login.
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Request
from fastapi.responses import Response

from stepup.domain.errors import DomainError, InvalidCredentials, RateLimited
from stepup.methods.base import ChallengeSent
from stepup.services import account_security
from stepup.web import deps
from stepup.web.portal.plumbing import (
    AnyPage,
    Refusal,
    SignedIn,
    SignedInReturning,
    UserForm,
    VisitorForm,
    VisitorPage,
    portal_router,
    refused,
    status_for,
)
from stepup.web.portal.render import (
    SESSION_COOKIE,
    Page,
    delete_cookie,
    login_fallback,
    passkey_request,
    redirect,
    sends_codes,
    set_cookie,
)

router = portal_router()

PAGE = "/settings/security"
RESET_COOKIE = "stepup_reset"
PASSWORD_FIELDS = ("current_password", "new_password")
PIN_FIELDS = ("password", "new_pin", "code")


# --- Settings → Account security ------------------------------------------------------


async def _security_page(page: Page, *, chosen: str | None = None,
                         errors: dict[str, str] | None = None,
                         sent: ChallengeSent | None = None, wait: int = 0,
                         status_code: int = 200) -> Response:
    assert page.user is not None
    rt, user_id = page.rt, page.user.id
    choices = await account_security.pin_methods(rt, user_id)
    types = [c["type"] for c in choices]
    if chosen not in types:
        chosen = next((t for t in types if not login_fallback(t)), types[0] if types else None)
    current = next((c for c in choices if c["type"] == chosen), None)
    passkey, problem = await passkey_request(page, chosen, lambda t: (
        account_security.pin_challenge(rt, deps.actor(page.request), user_id, t)))
    errors = dict(errors or {})
    if problem:
        errors.setdefault("pin_form", problem)
    done = page.request.query_params.get("done")
    notice = {"password": page._("Your password was changed. Every other session was "
                                 "logged out."),
              "pin": page._("Your PIN was changed.")}.get(done or "")
    return page.render(
        "security.html", status_code=status_code, title=page._("Account security"),
        notice=notice, errors=errors, choices=choices if len(choices) > 1 else [],
        current=current, account_email=bool(current and current.get("account_email")),
        sends_code=sends_codes(chosen), sent=sent, wait=sent.resend_in if sent else wait,
        passkey=passkey, min_length=rt.settings.password_min_length)


def _errors(r: Refusal, fields: tuple[str, ...], form: str) -> dict[str, str]:
    """The refusal under its field (a wrong password under the password's, the first
    of ``fields``), else above its form."""
    if isinstance(r.error, InvalidCredentials):
        return {fields[0]: r.message}
    field = r.error.field if r.error.field in fields else form
    return {field: r.message}


@router.get(PAGE)
async def security_page(request: Request, page: SignedInReturning) -> Response:
    return await _security_page(page, chosen=request.query_params.get("method"))


@router.post(PAGE + "/password")
async def change_password(page: SignedIn, form: UserForm) -> Response:
    new = await refused(
        page, account_security.change_password(
            page.rt, deps.actor(page.request), page.me.id, page.session_id or "",
            current_password=form.get("current_password", ""),
            new_password=form.get("new_password", ""), rotate=True),
        lambda r: _security_page(page, errors=_errors(r, PASSWORD_FIELDS, "password_form"),
                                 status_code=r.status))
    response = redirect(PAGE + "?done=password")
    if new is not None:
        # The session is new: a copy of the old token (another device) opens nothing.
        set_cookie(response, page.rt, SESSION_COOKIE, new.token, samesite="lax")
    return response


@router.post(PAGE + "/pin/send")
async def send_pin_code(page: SignedIn, form: UserForm) -> Response:
    method = form.get("method") or None
    error, status, sent, wait = None, 200, None, 0
    try:
        sent = await account_security.pin_challenge(page.rt, deps.actor(page.request),
                                                    page.me.id, method)
    except DomainError as err:
        error, status = page.send_error(err), status_for(err)
        wait = (err.retry_after or 0) if isinstance(err, RateLimited) else 0
    return await _security_page(page, chosen=method, sent=sent, wait=wait,
                                errors={"pin_form": error} if error else None,
                                status_code=status)


@router.post(PAGE + "/pin")
async def change_pin(page: SignedIn, form: UserForm) -> Response:
    method = form.get("method") or None
    await refused(
        page, account_security.change_pin(
            page.rt, deps.actor(page.request), page.me.id, password=form.get("password", ""),
            new_pin=form.get("new_pin", "").strip(), method=method,
            code=form.get("code", "").strip()),
        lambda r: _security_page(page, chosen=method,
                                 errors=_errors(r, PIN_FIELDS, "pin_form"),
                                 status_code=r.status))
    return redirect(PAGE + "?done=pin")


# --- Forgot password? ------------------------------------------------------------------


def _forgot_form(page: Page, *, email: str = "", error: str | None = None,
                 sent: bool = False, status_code: int = 200) -> Response:
    return page.render("password_forgot.html", status_code=status_code,
                       title=page._("Forgot password?"), email=email, error=error, sent=sent,
                       minutes=page.rt.settings.password_reset_minutes)


@router.get("/password/forgot")
async def forgot_page(request: Request, page: AnyPage) -> Response:
    return _forgot_form(page, sent=bool(request.query_params.get("sent")))


@router.post("/password/forgot")
async def forgot_submit(page: VisitorPage, form: VisitorForm,
                        background: BackgroundTasks) -> Response:
    email = form.get("email", "").strip()
    asked = await refused(
        page, account_security.count_reset_request(page.rt, deps.actor(page.request), email),
        lambda r: _forgot_form(page, email=email, error=r.message, status_code=r.status))
    # The same answer whatever the address (the address stays out of the URL), sent
    # before the account is looked up, so that its time tells nothing either.
    background.add_task(account_security.send_reset_link, page.rt, asked)
    return redirect("/password/forgot?sent=1")


def _reset_form(page: Page, *, error: str | None = None, invalid: bool = False,
                done: bool = False, status_code: int = 200, **context: Any) -> Response:
    return page.render("password_reset.html", status_code=status_code,
                       title=page._("Choose a new password"), error=error, invalid=invalid,
                       done=done, min_length=page.rt.settings.password_min_length, **context)


def _reset_token(page: Page) -> str:
    return page.request.cookies.get(deps.cookie_name(page.rt, RESET_COOKIE)) or ""


@router.get("/password/reset")
async def reset_page(request: Request, page: VisitorPage) -> Response:
    token = request.query_params.get("token")
    if token is not None:
        response = redirect("/password/reset")
        set_cookie(response, page.rt, RESET_COOKIE, token[:200],
                   max_age=page.rt.settings.password_reset_minutes * 60, samesite="lax")
        return response
    try:
        await account_security.check_reset(page.rt, _reset_token(page))
    except DomainError as err:
        return _reset_form(page, error=page.error_message(err), invalid=True,
                           status_code=status_for(err))
    return _reset_form(page)


@router.post("/password/reset")
async def reset_submit(page: VisitorPage, form: VisitorForm) -> Response:
    def redraw(r: Refusal) -> Response:
        field = r.error.field == "new_password"
        return _reset_form(page, error=None if field else r.message,
                           field_error=r.message if field else None,
                           invalid=not field, status_code=r.status)

    asks_code = await refused(page, account_security.reset_password(
        page.rt, deps.actor(page.request), _reset_token(page), form.get("new_password", "")),
        redraw)
    # The answer itself says it is done: whether the next login asks for a security code
    # is the service's word for this account, never a flag a URL could carry.
    response = _reset_form(page, done=True, asks_code=asks_code)
    delete_cookie(response, page.rt, RESET_COOKIE)
    delete_cookie(response, page.rt, SESSION_COOKIE)  # it ended with every other one
    return response
