"""Lock-out recovery pages (seed 004, option 2) and the cancel link.

"Can't use any of your methods?" on the second-factor page leads here: the password is
already proven (the ``login_token`` cookie), so the user may file a request to reset
two-factor authentication. The cancel link sent to every verified contact shows a page
with a button: a GET never changes anything (mail scanners follow links), the POST does.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from stepup.domain.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    RecoveryCooldown,
)
from stepup.services import recovery, recovery_requests
from stepup.store.models import RecoveryRequest
from stepup.web import deps
from stepup.web.portal.auth import login_expired, login_token
from stepup.web.portal.enroll import phone_example
from stepup.web.portal.plumbing import (
    VisitorForm,
    VisitorPage,
    portal_router,
    status_for,
)
from stepup.web.portal.render import N_, Page, redirect

router = portal_router()

USER_STATUS = {
    "requested": N_("Support has your request and will contact you to check your identity."),
    "checked": N_("Support has checked your identity; a supervisor will decide on your "
                  "request."),
    "approved": N_("Your request is approved. Two-factor authentication will be reset on "
                   "%(when)s, unless it is cancelled before then."),
    "completed": N_("Two-factor authentication was reset. Log in with your password and set "
                    "up a method."),
    "rejected": N_("Support rejected this request."),
    "cancelled": N_("This request was cancelled."),
}
FIELDS = ("description", "channel", "phone", "best_time")


def status_text(page: Page, row: RecoveryRequest) -> str:
    return page._(USER_STATUS.get(row.status, row.status),
                  when=page.local_when(row.effective_at))


def cooldown_text(page: Page, seconds: int) -> str:
    """How long until a new request may be filed, in words (whole hours, rounded up;
    minutes in the last hour)."""
    if seconds >= 3600:
        return page.ngettext(
            "A recovery request for your account was cancelled or rejected lately. You can "
            "send a new one in %(num)d hour.",
            "A recovery request for your account was cancelled or rejected lately. You can "
            "send a new one in %(num)d hours.", -(-seconds // 3600))
    return page.ngettext(
        "A recovery request for your account was cancelled or rejected lately. You can "
        "send a new one in %(num)d minute.",
        "A recovery request for your account was cancelled or rejected lately. You can "
        "send a new one in %(num)d minutes.", max(1, -(-seconds // 60)))


def _form(page: Page, *, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, status_code: int = 200,
          wait: int = 0) -> Response:
    # During the cooldown the page says how long to wait instead of offering the form.
    return page.render("recovery/request.html", status_code=status_code,
                       title=page._("Can't use any of your methods?"),
                       values=values or {"channel": "email"}, errors=errors or {},
                       phone_example=phone_example(page),
                       cooldown=cooldown_text(page, wait) if wait else None)


@router.get("/login/recovery")
async def recovery_page(request: Request, page: VisitorPage) -> Response:
    token = login_token(page)
    if not token:
        return redirect("/login")
    try:
        open_request = await recovery_requests.open_request_for_login(page.rt, token)
    except NotAuthenticated:
        return login_expired(page)
    if open_request is not None:
        notice = (page._("Your request was sent. We also told every verified contact of "
                         "your account, with a link to cancel it if it was not you.")
                  if request.query_params.get("filed") else None)
        return page.render("recovery/status.html", title=page._("Recovery request"),
                           r=open_request, status=status_text(page, open_request),
                           notice=notice, when=page.local_when,
                           cancel_path="/recovery/cancel/"
                           + recovery_requests.cancel_token(page.rt, open_request.id))
    return _form(page, wait=await recovery_requests.cooldown_for_login(page.rt, token))


@router.post("/login/recovery")
async def recovery_submit(request: Request, page: VisitorPage, form: VisitorForm
                          ) -> Response:
    token = login_token(page)
    if not token:
        return login_expired(page)
    values = {k: form.get(k, "") for k in FIELDS}
    try:
        await recovery_requests.file_request(page.rt, deps.actor(request), token,
                                             values["description"],
                                             {"channel": values["channel"],
                                              "phone": values["phone"],
                                              "best_time": values["best_time"]})
    except NotAuthenticated:
        return login_expired(page)
    except Conflict:
        return redirect("/login/recovery")
    except RecoveryCooldown as err:
        return _form(page, values=values, status_code=status_for(err),
                     wait=err.retry_after or 1)
    except DomainError as err:
        field = err.field if err.field in FIELDS else "form"
        return _form(page, values=values, errors={field: _field_error(page, err)},
                     status_code=status_for(err))
    return redirect("/login/recovery?filed=1")


def _field_error(page: Page, err: DomainError) -> str:
    return page.error_message(err)  # the catalogue's text (domain/texts.py)


# --- the cancel link ----------------------------------------------------------------------


def _invalid_link(page: Page) -> Response:
    return page.render("recovery/cancel.html", status_code=404,
                       title=page._("Cancel a recovery request"), invalid=True)


@router.get("/recovery/cancel/{token}")
async def cancel_page(token: str, page: VisitorPage) -> Response:
    try:
        view = await recovery.look_up_cancel(page.rt, token)
    except NotFound:
        return _invalid_link(page)
    return page.render("recovery/cancel.html", title=page._("Cancel a recovery request"),
                       invalid=False, view=view, status=status_text(page, view.request),
                       token=token, when=page.local_when)


@router.post("/recovery/cancel/{token}")
async def cancel_submit(request: Request, token: str, page: VisitorPage, form: VisitorForm
                        ) -> Response:
    try:
        row = await recovery.cancel_by_token(page.rt, deps.actor(request), token)
    except NotFound:
        return _invalid_link(page)
    except Conflict:
        view = await recovery.look_up_cancel(page.rt, token)
        return page.render("recovery/cancel.html", status_code=409,
                           title=page._("Cancel a recovery request"), invalid=False,
                           view=view, status=status_text(page, view.request), token=token,
                           when=page.local_when)
    return page.render("recovery/cancelled.html", title=page._("Recovery request cancelled"),
                       r=row)
