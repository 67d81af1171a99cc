"""Signing up, logging in (password, then a second factor) and logging out.

Before login there is no session, so these forms bind their CSRF token to a random
pre-session cookie. The ``login_token`` between the password and the second factor
lives only in a short-lived HttpOnly cookie, never in a URL; so does the page to return
to afterwards (``/login?next=``, local paths only).

The language this browser chose before logging in (the switcher's ``stepup_lang``
cookie) is saved to the account when the login completes, if it differs: the pages
after login stay in the language the user was reading, and the account (its messages,
its other devices) follows the choice (``account.updated``, as ``/settings/language``).
A browser that never chose keeps the account's language.

"Remember this device" at the second factor sets a 30-day HttpOnly cookie whose token the
password step hands to the service: a remembered device skips the second factor of login,
and nothing else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from stepup.domain.errors import AccountLocked, DomainError, NotAuthenticated
from stepup.domain.refusals import held
from stepup.methods.base import ChallengeSent
from stepup.services import accounts, lifecycle, login, sessions
from stepup.services.login import LoginResult
from stepup.web import deps, i18n
from stepup.web.portal.plumbing import (
    AnyPage,
    Refusal,
    SignedIn,
    UserForm,
    VisitorForm,
    VisitorPage,
    code_sent,
    portal_router,
    refused,
)
from stepup.web.portal.render import (
    DEVICE_COOKIE,
    LANG_COOKIE,
    LOGIN_COOKIE,
    LOGIN_COOKIE_MAX_AGE,
    NEXT_COOKIE,
    SESSION_COOKIE,
    Page,
    delete_cookie,
    login_fallback,
    passkey_request,
    redirect,
    remember_language,
    safe_next,
    sends_codes,
    set_cookie,
)

router = portal_router()

METHODS_PAGE = "/settings/methods"


def start_session(page: Page, token: str, url: str) -> Response:
    response = redirect(url)
    set_cookie(response, page.rt, SESSION_COOKIE, token, samesite="lax")
    delete_cookie(response, page.rt, LOGIN_COOKIE)
    delete_cookie(response, page.rt, NEXT_COOKIE)
    return page.finish(response)


async def keep_language_choice(page: Page, result: LoginResult) -> None:
    """Save the language this browser chose (the switcher's cookie) to the account that
    just logged in, when it differs from the account's (see the module's docstring)."""
    chosen = page.request.cookies.get(deps.cookie_name(page.rt, LANG_COOKIE))
    if chosen in i18n.LANGUAGES and result.user_id and chosen != result.language:
        await lifecycle.update(page.rt, deps.actor(page.request), result.user_id,
                               language=chosen)


def after_password(page: Page, result: LoginResult, next_url: str | None = None) -> Response:
    next_url = safe_next(next_url)
    if result.status == "authenticated" and result.session_token:
        return start_session(page, result.session_token, next_url or METHODS_PAGE)
    response = redirect("/login/second-factor")
    set_cookie(response, page.rt, LOGIN_COOKIE, result.login_token or "",
               max_age=LOGIN_COOKIE_MAX_AGE, samesite="strict")
    if next_url:
        set_cookie(response, page.rt, NEXT_COOKIE, next_url, max_age=LOGIN_COOKIE_MAX_AGE,
                   samesite="strict")
    else:
        delete_cookie(response, page.rt, NEXT_COOKIE)
    return page.finish(response)


def device_cookie(page: Page) -> str | None:
    """This browser's "remember this device" token, if it has one."""
    return page.request.cookies.get(deps.cookie_name(page.rt, DEVICE_COOKIE))


@router.get("/")
async def home(page: AnyPage) -> Response:
    return redirect(METHODS_PAGE if page.user else "/login")


# --- sign-up ---------------------------------------------------------------------------


def _signup_form(page: Page, *, email: str = "", language: str | None = None,
                 errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return page.render("signup.html", status_code=status_code, title=page._("Create an account"),
                       email=email, language=language or page.lang, errors=errors or {},
                       min_length=page.rt.settings.password_min_length)


@router.get("/signup")
async def signup_page(page: AnyPage) -> Response:
    if page.user:
        return redirect(METHODS_PAGE)
    return _signup_form(page)


@router.post("/signup")
async def signup(request: Request, page: VisitorPage, form: VisitorForm) -> Response:
    email = form.get("email", "").strip()
    password = form.get("password", "")
    pin = form.get("pin", "").strip()
    language = form.get("language", page.lang)
    if language not in i18n.LANGUAGES:
        language = page.lang
    rt, who = page.rt, deps.actor(request)

    async def sign_up() -> LoginResult:
        await accounts.create_account(rt, who, email=email, password=password, pin=pin,
                                      language=language)
        return await login.password_step(rt, who, email, password)

    def redraw(r: Refusal) -> Response:
        field = r.error.field if r.error.field in ("email", "password", "pin",
                                                   "language") else "form"
        return _signup_form(page, email=email, language=language,
                            errors={field: r.message}, status_code=r.status)

    response = after_password(page, await refused(page, sign_up(), redraw))
    cookie = deps.cookie_name(rt, LANG_COOKIE)
    if request.cookies.get(cookie) not in (None, language):
        # The form's choice is newer than the browser's: the next login must not undo it.
        remember_language(response, rt, language)
    return response


# --- login: the password ---------------------------------------------------------------


def _login_form(page: Page, *, email: str = "", error: str | None = None,
                notice: str | None = None, next_url: str | None = None,
                status_code: int = 200) -> Response:
    return page.render("login.html", status_code=status_code, title=page._("Log in"),
                       email=email, error=error, notice=notice, next_url=safe_next(next_url))


@router.get("/login")
async def login_page(request: Request, page: AnyPage) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if page.user:
        return redirect(next_url or METHODS_PAGE)
    notice = None
    if request.query_params.get("expired"):
        notice = page._("Your login attempt has expired. Log in again.")
    elif request.query_params.get("bye"):
        notice = page._("You have logged out.")
    elif next_url:
        notice = page._("Log in to continue.")
    return _login_form(page, notice=notice, next_url=next_url)


@router.post("/login")
async def login_submit(request: Request, page: VisitorPage, form: VisitorForm) -> Response:
    email = form.get("email", "").strip()
    next_url = safe_next(form.get("next"))
    result = await refused(
        page, login.password_step(page.rt, deps.actor(request), email,
                                  form.get("password", ""),
                                  remember_device_token=device_cookie(page)),
        lambda r: _login_form(page, email=email, error=r.message, next_url=next_url,
                              status_code=r.status))
    if result.status == "authenticated":
        await keep_language_choice(page, result)
    return after_password(page, result, next_url)


# --- login: the second factor ----------------------------------------------------------


def login_token(page: Page) -> str | None:
    """The login_token of a password that passed, kept in a short-lived cookie."""
    return page.request.cookies.get(deps.cookie_name(page.rt, LOGIN_COOKIE))


def _next_url(page: Page) -> str | None:
    return safe_next(page.request.cookies.get(deps.cookie_name(page.rt, NEXT_COOKIE)))


def login_expired(page: Page) -> Response:
    """Back to the password step, keeping where the user was going."""
    next_url = _next_url(page)
    response = redirect("/login?expired=1" + (
        "&next=" + quote(next_url, safe="/") if next_url else ""))
    delete_cookie(response, page.rt, LOGIN_COOKIE)
    delete_cookie(response, page.rt, NEXT_COOKIE)
    return page.finish(response)


async def _second_factor_form(page: Page, token: str, methods: list[dict[str, Any]],
                              chosen: str | None, *, error: str | None = None,
                              sent: ChallengeSent | None = None, wait: int = 0,
                              remember: bool = False, status_code: int = 200) -> Response:
    types = [m["type"] for m in methods]
    if chosen not in types:
        chosen = next((t for t in types if not login_fallback(t)), types[0] if types else None)
    current = next((m for m in methods if m["type"] == chosen), None)
    # The channel picker: every method that may finish this login, backup codes last.
    choices = sorted(methods, key=lambda m: login_fallback(m["type"]))
    passkey, problem = await passkey_request(page, chosen, lambda t: login.challenge(
        page.rt, deps.actor(page.request), token, t))
    return page.render(
        "second_factor.html", status_code=status_code, title=page._("Enter a security code"),
        current=current, choices=choices if len(choices) > 1 else [], error=error or problem,
        sent=sent, wait=sent.resend_in if sent else wait, sends_code=sends_codes(chosen),
        remember=remember, remember_days=page.rt.settings.remember_device_days,
        fallback=next((t for t in types if login_fallback(t)), None), passkey=passkey,
    )


@router.get("/login/second-factor")
async def second_factor_page(request: Request, page: VisitorPage) -> Response:
    token = login_token(page)
    if not token:
        return redirect("/login")
    try:
        methods = await login.flow_methods(page.rt, token)
    except DomainError:
        return login_expired(page)
    return await _second_factor_form(page, token, methods,
                                    request.query_params.get("method"))


@router.post("/login/second-factor")
async def second_factor_submit(request: Request, page: VisitorPage,
                               form: VisitorForm) -> Response:
    token = login_token(page)
    if not token:
        return login_expired(page)
    method = form.get("method", "")
    remember = form.get("remember_device") == "1"

    async def redraw(r: Refusal) -> Response:
        # The methods the refused step read itself; the flow is over when there are
        # none to offer (it expired) or the account is now locked.
        methods = held(r.error, list)
        if methods is None or isinstance(r.error, NotAuthenticated | AccountLocked):
            return login_expired(page)
        return await _second_factor_form(page, token, methods, method, error=r.message,
                                         remember=remember, status_code=r.status)

    result = await refused(page, login.verify(page.rt, deps.actor(request), token, method,
                                              form.get("code", ""),
                                              remember_device=remember), redraw)
    if login_fallback(method):
        # Seed 004, option 1: in with a backup code, so something is lost; the methods
        # page asks the user to set up their methods again before anything else.
        url = METHODS_PAGE + "?reconfigure=1" + ("&backup_low=1" if result.notes.get("low")
                                                 else "")
    else:
        url = _next_url(page) or (METHODS_PAGE + ("?backup_low=1" if result.notes.get("low")
                                                 else ""))
    await keep_language_choice(page, result)
    response = start_session(page, result.session_token or "", url)
    if result.remember_device_token:
        set_cookie(response, page.rt, DEVICE_COOKIE, result.remember_device_token,
                   max_age=page.rt.settings.remember_device_days * 24 * 3600, samesite="lax")
    return response


@router.post("/login/second-factor/send")
async def second_factor_send(request: Request, page: VisitorPage,
                             form: VisitorForm) -> Response:
    """Ask an out-of-band method to send a code for this login."""
    token = login_token(page)
    if not token:
        return login_expired(page)
    method = form.get("method", "")
    done = await code_sent(page, login.challenge(page.rt, deps.actor(request), token, method),
                           lambda: login_expired(page))
    try:
        methods = await login.flow_methods(page.rt, token)
    except DomainError:
        return login_expired(page)
    return await _second_factor_form(page, token, methods, method, error=done.error,
                                     sent=done.sent, wait=done.wait, status_code=done.status)


# --- logout ----------------------------------------------------------------------------


@router.post("/logout")
async def logout(page: SignedIn, form: UserForm) -> Response:
    await sessions.end(page.rt, page.session_id or "")
    response = redirect("/login?bye=1")
    delete_cookie(response, page.rt, SESSION_COOKIE)
    return response
