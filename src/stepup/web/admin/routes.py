"""The support console: staff log in (login.py: password, then a method protecting their
login — the authenticator app or a passkey), search accounts, see an account's security
state, lift locks, and work the recovery queue.

Staff sessions live in the console's own cookie (``stepup_staff``); a login still waiting
for its second factor reaches the second-factor page and nothing else. Every form carries
a CSRF token bound to the staff session (or, before login, to the random pre-session
cookie the portal uses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from stepup.domain.errors import DomainError, NotAuthenticated, NotFound, RateLimited
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE
from stepup.services import recovery, staff, support
from stepup.services.staff import StaffAuth
from stepup.services.support import PhoneOnFile
from stepup.web import deps, flat_routes
from stepup.web.admin import login
from stepup.web.admin.login import login_token, session_token, to_login
from stepup.web.portal.plumbing import PageAnswer, checked, portal_router, status_for
from stepup.web.portal.render import N_, Page, redirect

router = portal_router(prefix="/admin", include_in_schema=False)
flat_routes.include(router, login.router)  # plain routes: see web/flat_routes.py


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

    async def who(self) -> Callable[[str], str]:
        """How an audit row names its actor: a staff member by name and e-mail (their
        acts are recorded as ``staff:<id>``), the user, the system, the cancel link."""
        members = await support.staff_by_actor(self.page.rt)
        _ = self.page._
        plain = {"user": _("The user"), "system": _("The service (automatic)"),
                 "cancel-link": _("The cancel link of a notice"), "cli": _("An operator (CLI)")}

        def name(actor: str) -> str:
            member = members.get(actor)
            if member is not None:
                return f"{member.name} ({member.email})"
            return plain.get(actor, actor)

        return name


async def _console(request: Request) -> Console:
    """The console of a staff member whose login is complete, else where to go: the
    second factor while a login waits for it, else the login page."""
    rt = deps.runtime(request)
    try:
        auth = await staff.resolve(rt, session_token(request))
    except NotAuthenticated:
        if login_token(request):
            raise PageAnswer(redirect("/admin/second-factor")) from None
        raise PageAnswer(to_login(request)) from None
    return Console(Page(request, session_id="staff:" + auth.session.id), auth)


async def _console_form(console: Annotated[Console, Depends(_console)]) -> Mapping[str, str]:
    """A console form post: a complete staff login and a valid CSRF token."""
    return await checked(console.page)


StaffConsole = Annotated[Console, Depends(_console)]
ConsoleForm = Annotated[Mapping[str, str], Depends(_console_form)]


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


@dataclass
class PhoneLookup:
    """The phone number on file as a staff member asked for it (None: not asked)."""

    phone: PhoneOnFile | None


@dataclass
class PhoneAnswer:
    lookup: PhoneLookup | None = None
    error: str | None = None  # why it is not shown (too many look-ups)
    status: int = 200


async def _look_up_phone(console: Console, user_id: str, request_id: str | None = None
                         ) -> PhoneAnswer:
    """The number on file (the look-up audited), or why it is not shown."""
    try:
        return PhoneAnswer(PhoneLookup(await support.phone_on_file(
            console.page.rt, console.actor, console.staff, user_id,
            request_id=request_id)))
    except RateLimited as err:
        return PhoneAnswer(error=console.page.error_message(err), status=status_for(err))


async def _user_page(console: Console, user_id: str, *, notice: str | None = None,
                     error: str | None = None, status_code: int = 200,
                     lookup: PhoneLookup | None = None) -> Response:
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
                          lock_what=_lock_what, who=await console.who(), lookup=lookup,
                          phone_action=f"/admin/users/{user_id}/phone",
                          status_name=partial(_status_name, page))


@router.get("/users/{user_id}")
async def user_page(request: Request, user_id: str, console: StaffConsole) -> Response:
    notice = None
    if request.query_params.get("unlocked"):
        notice = console.page._("The lock was lifted.")
    return await _user_page(console, user_id, notice=notice)


@router.post("/users/{user_id}/phone")
async def user_phone(user_id: str, console: StaffConsole, form: ConsoleForm) -> Response:
    """Show the account's phone number on file: a POST, because each look-up is
    audited; the answer is the page itself, so the number is in no URL or history."""
    try:
        found = await _look_up_phone(console, user_id)
    except NotFound:
        return console.page.not_found()
    return await _user_page(console, user_id, lookup=found.lookup, error=found.error,
                            status_code=found.status)


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
                        notice: str | None = None, status_code: int = 200,
                        lookup: PhoneLookup | None = None) -> Response:
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
        lookup=lookup, phone_action=f"/admin/recovery/{request_id}/phone",
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


@router.post("/recovery/{request_id}/phone")
async def request_phone(request_id: str, console: StaffConsole, form: ConsoleForm
                        ) -> Response:
    """The number on file of the request's account, to call back (the checklist)."""
    try:
        row = await recovery.get(console.page.rt, request_id)
        found = await _look_up_phone(console, row.user_id, request_id)
    except NotFound:
        return console.page.not_found()
    return await _request_page(console, request_id, lookup=found.lookup, error=found.error,
                               status_code=found.status)


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

