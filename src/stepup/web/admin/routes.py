"""The support console: staff log in (password, then a method protecting their login:
the authenticator app, or a passkey), search accounts, see an account's security state,
lift locks, and work the recovery queue.

Staff sign in through the login flow everyone goes through (services/staff.py): while
the second factor is due, the flow's ``login_token`` lives in a short-lived cookie of the
console's own (``stepup_staff_login``), and the session a completed login starts lives in
``stepup_staff``. Neither opens StepUp's own pages, nor their cookies the console. Every
form carries a CSRF token bound to the staff session (or, before login, to the random
pre-session cookie the portal uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from stepup.domain.errors import (
    AccountLocked,
    DomainError,
    NotAuthenticated,
    NotFound,
    RateLimited,
)
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE
from stepup.domain.refusals import held
from stepup.methods.base import ChallengeSent
from stepup.services import recovery, staff, support
from stepup.services.staff import StaffAuth
from stepup.web import deps
from stepup.web.portal.plumbing import (
    PageAnswer,
    Refusal,
    VisitorForm,
    VisitorPage,
    checked,
    portal_router,
    refused,
    status_for,
)
from stepup.web.portal.render import (
    LOGIN_COOKIE_MAX_AGE,
    N_,
    Page,
    delete_cookie,
    login_fallback,
    passkey_request,
    redirect,
    sends_codes,
    set_cookie,
)

router = portal_router(prefix="/admin", include_in_schema=False)

STAFF_COOKIE = "stepup_staff"
# The login flow between the password and the second factor (its login_token).
STAFF_LOGIN_COOKIE = "stepup_staff_login"

CHECK_LABELS = {
    "documents_seen": N_("Identity documents seen and matching the account"),
    "answers_matched": N_("Answers to the account questions matched"),
    "call_back_done": N_("Called back on the phone number on file"),
}
STATUS_LABELS = {
    "requested": N_("Waiting for identity checks"),
    "checked": N_("Checked, waiting for a supervisor"),
    "approved": N_("Approved, in the waiting period"),
    "completed": N_("Completed: two-factor authentication was reset"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
}
ROLE_LABELS = {"support": N_("Support"), "supervisor": N_("Supervisor")}


def _status_name(page: Page, status: str) -> str:
    label = STATUS_LABELS.get(status)
    return page._(label) if label else status


class Console:
    """One console request: the page, the staff member, and who to audit."""

    def __init__(self, page: Page, auth: StaffAuth) -> None:
        self.page = page
        self.auth = auth
        self.staff = auth.staff
        self.actor = staff.as_actor(deps.actor(page.request), auth.staff)

    def render(self, template: str, status_code: int = 200, **context: object) -> Response:
        return self.page.render(template, status_code=status_code, staff=self.staff,
                                role_name=self.page._(ROLE_LABELS.get(self.staff.role,
                                                                      self.staff.role)),
                                **context)


def _token(request: Request) -> str | None:
    return request.cookies.get(deps.cookie_name(deps.runtime(request), STAFF_COOKIE))


def _login_token(request: Request) -> str | None:
    return request.cookies.get(deps.cookie_name(deps.runtime(request), STAFF_LOGIN_COOKIE))


def _to_login(request: Request) -> Response:
    response = redirect("/admin/login")
    delete_cookie(response, deps.runtime(request), STAFF_COOKIE)
    delete_cookie(response, deps.runtime(request), STAFF_LOGIN_COOKIE)
    return response


async def _console(request: Request) -> Console:
    """The console of a staff member whose login is complete, else where to go: the
    second factor while a login waits for it, else the login page."""
    rt = deps.runtime(request)
    try:
        auth = await staff.resolve(rt, _token(request))
    except NotAuthenticated:
        if _login_token(request):
            raise PageAnswer(redirect("/admin/second-factor")) from None
        raise PageAnswer(_to_login(request)) from None
    return Console(Page(request, session_id="staff:" + auth.session.id), auth)


async def _console_form(console: Annotated[Console, Depends(_console)]) -> Mapping[str, str]:
    """A console form post: a complete staff login and a valid CSRF token."""
    return await checked(console.page)


StaffConsole = Annotated[Console, Depends(_console)]
ConsoleForm = Annotated[Mapping[str, str], Depends(_console_form)]


# --- login ---------------------------------------------------------------------------------


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
    token = _login_token(request)
    if not token:
        raise PageAnswer(_to_login(request))
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
    return page.render("admin/second_factor.html", status_code=status_code,
                       title=page._("Enter a security code"), current=current,
                       choices=choices if len(choices) > 1 else [], error=error or problem,
                       sent=sent, wait=sent.resend_in if sent else wait,
                       sends_code=sends_codes(chosen), passkey=passkey, staff=None)


async def _methods_or_login(page: Page, token: str) -> list[dict[str, Any]]:
    try:
        return await staff.flow_methods(page.rt, token)
    except DomainError:
        raise PageAnswer(_to_login(page.request)) from None


@router.get("/second-factor")
async def second_factor_page(request: Request, page: VisitorPage,
                             token: LoginFlowToken) -> Response:
    if _token(request):
        try:
            await staff.resolve(page.rt, _token(request))
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
            return _to_login(request)
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
    error, status, sent, wait = None, 200, None, 0
    try:
        sent = await staff.challenge(page.rt, deps.actor(request), token, method)
    except NotAuthenticated:
        return _to_login(request)
    except DomainError as err:
        error, status = page.send_error(err), status_for(err)
        wait = (err.retry_after or 0) if isinstance(err, RateLimited) else 0
    methods = await _methods_or_login(page, token)
    return await _second_factor_form(page, token, methods, method, error=error, sent=sent,
                                     wait=wait, status_code=status)


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        auth = await staff.resolve(deps.runtime(request), _token(request))
    except NotAuthenticated:
        return _to_login(request)  # a login still at its second factor: start over
    page = Page(request, session_id="staff:" + auth.session.id)
    await checked(page)
    await staff.logout(page.rt, auth.session.id)
    response = redirect("/admin/login?bye=1")
    delete_cookie(response, page.rt, STAFF_COOKIE)
    delete_cookie(response, page.rt, STAFF_LOGIN_COOKIE)
    return response


# --- search and the queue ------------------------------------------------------------------


@router.get("")
async def home(request: Request, console: StaffConsole) -> Response:
    q = request.query_params.get("q", "").strip()[:320]
    users = await recovery.find_users(console.page.rt, q) if q else []
    return console.render("admin/home.html", title=console.page._("Support console"),
                          q=q, users=users, searched=bool(q),
                          queue=await recovery.queue(console.page.rt),
                          status_name=partial(_status_name, console.page))


# --- one account -------------------------------------------------------------------------


def _lock_what(scope: str) -> str:
    """The ``what`` of support.unlock for a guard scope (``method:totp`` → ``totp``)."""
    return scope.partition(":")[2] if scope.startswith("method:") else scope


async def _user_page(console: Console, user_id: str, *, notice: str | None = None,
                     error: str | None = None, status_code: int = 200) -> Response:
    page = console.page
    try:
        d = await recovery.dossier(page.rt, user_id)
    except NotFound:
        return page.not_found()

    def scope_name(scope: str) -> str:
        if scope == ACCOUNT_SCOPE:
            return page._("Account (every method)")
        if scope == PIN_SCOPE:
            return page._("PIN")
        return page.method_name(_lock_what(scope))

    return console.render("admin/user.html", status_code=status_code,
                          title=page._("Account %(email)s", email=d.user.email), d=d,
                          notice=notice, error=error, scope_name=scope_name,
                          lock_what=_lock_what,
                          status_name=partial(_status_name, page))


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str, console: StaffConsole) -> Response:
    notice = None
    if request.query_params.get("unlocked"):
        notice = console.page._("The lock was lifted.")
    return await _user_page(console, user_id, notice=notice)


@router.post("/users/{user_id}/unlock")
async def unlock(user_id: str, console: StaffConsole, form: ConsoleForm) -> Response:
    what = form.get("what", "all")
    if what not in ("all", ACCOUNT_SCOPE, PIN_SCOPE) and not what.isidentifier():
        return console.page.not_found()
    try:
        await support.unlock_user(console.page.rt, console.actor, user_id, what)
    except NotFound:
        return console.page.not_found()
    return redirect(f"/admin/users/{user_id}?unlocked=1")


# --- recovery requests -----------------------------------------------------------------------


def _checklist(page: Page) -> list[tuple[str, str]]:
    return [(item, page._(CHECK_LABELS[item]) if item in CHECK_LABELS
             else item.replace("_", " ").capitalize())
            for item in page.rt.settings.recovery_checklist]


async def _request_page(console: Console, request_id: str, *, error: str | None = None,
                        notice: str | None = None, status_code: int = 200) -> Response:
    page = console.page
    try:
        row = await recovery.get(page.rt, request_id)
        d = await recovery.dossier(page.rt, row.user_id)
    except NotFound:
        return page.not_found()
    me = console.staff
    return console.render(
        "admin/request.html", status_code=status_code, title=page._("Recovery request"),
        r=row, d=d, checklist=_checklist(page), error=error, notice=notice,
        status_name=_status_name(page, row.status),
        can_check=row.status == "requested",
        can_approve=(row.status == "checked" and me.role == "supervisor"
                     and row.checked_by != me.id),
        self_checked=row.status == "checked" and row.checked_by == me.id,
        can_reject=row.status in ("requested", "checked", "approved"),
        staff_name=lambda sid: d.staff_names.get(sid or "", sid or ""),
    )


@router.get("/recovery/{request_id}")
async def request_page(request: Request, request_id: str, console: StaffConsole
                       ) -> Response:
    done = request.query_params.get("done")
    notices = {"checked": N_("The identity checks were recorded. A supervisor other than "
                             "you must now approve or reject the request."),
               "approved": N_("The request is approved. The reset takes effect after the "
                              "waiting period unless someone cancels it."),
               "rejected": N_("The request is rejected.")}
    notice = console.page._(notices[done]) if done in notices else None
    return await _request_page(console, request_id, notice=notice)


async def _decide(console: Console, form: Mapping[str, str], request_id: str, action: str
                  ) -> Response:
    rt, who, me = console.page.rt, console.actor, console.staff
    note = form.get("note", "")
    try:
        if action == "check":
            done = [item for item in rt.settings.recovery_checklist
                    if form.get(f"check_{item}") == "1"]
            await recovery.record_checks(rt, who, me, request_id, done, note)
        elif action == "approve":
            await recovery.approve(rt, who, me, request_id, note)
        else:
            await recovery.reject(rt, who, me, request_id, note)
    except NotFound:
        return console.page.not_found()
    except DomainError as err:
        return await _request_page(console, request_id, error=_decision_error(console, err),
                                   status_code=status_for(err))
    past = {"check": "checked", "approve": "approved", "reject": "rejected"}[action]
    return redirect(f"/admin/recovery/{request_id}?done={past}")


def _decision_error(console: Console, err: DomainError) -> str:
    return console.page.error_message(err)  # the catalogue's text (domain/texts.py)


@router.post("/recovery/{request_id}/check")
async def check(request_id: str, console: StaffConsole, form: ConsoleForm) -> Response:
    return await _decide(console, form, request_id, "check")


@router.post("/recovery/{request_id}/approve")
async def approve(request_id: str, console: StaffConsole, form: ConsoleForm) -> Response:
    return await _decide(console, form, request_id, "approve")


@router.post("/recovery/{request_id}/reject")
async def reject(request_id: str, console: StaffConsole, form: ConsoleForm) -> Response:
    return await _decide(console, form, request_id, "reject")

