"""Enabling a method (PIN, then what the method needs) and new backup codes.

Methods that send their codes (SMS, e-mail, …) take two steps, as the help centre
describes: the phone number or e-mail address with the PIN, then the code that was sent
there. Until the code is entered the enrollment is pending; the methods page offers to
enter the code or to start again.

Secrets shown here — the TOTP key and QR code, backup codes — travel only in the body of
the answer to a POST (sent with ``Cache-Control: no-store`` by the middleware), never in
a URL or a cookie. The pending TOTP enrollment is kept server-side, so the confirm form
that sits beside the QR code sends only the code and the set-up's ticket — not the key —
with which a wrong code shows the same QR code and key again (services/pending_setup.py).

The last step of each set-up — the code sent, the code from the app, the passkey; for
backup codes, which are enabled the moment the PIN is given, the PIN step — asks what
the method will protect (web/portal/protects.py): its proof confirms the choice too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse, Response

from stepup.domain.destinations import example_phone
from stepup.domain.errors import (
    DomainError,
    NotFound,
    ValidationFailed,
)
from stepup.domain.refusals import held
from stepup.methods import registry
from stepup.methods.base import EnrollmentBody, IssuesCodeSets, MethodView
from stepup.services import methods, pending_setup
from stepup.web import deps, problems
from stepup.web.portal.plumbing import (
    AvailableMethod,
    CodeSetMethod,
    Refusal,
    SignedIn,
    UserForm,
    UserPage,
    not_found,
    portal_router,
    refused,
)
from stepup.web.portal.protects import choice, chosen, protection_sentence
from stepup.web.portal.render import (
    Page,
    destination_field,
    redirect,
)

router = portal_router()

def methods_url(done: str, method_type: str) -> str:
    return f"/settings/methods?done={done}&method={method_type}"


async def method_view(page: Page, method_type: str) -> MethodView | None:
    assert page.user is not None
    views = await methods.list_views(page.rt, page.user.id)
    return next((v for v in views if v.type == method_type), None)


async def _is_enabled(page: Page, method_type: str) -> bool:
    view = await method_view(page, method_type)
    return view is not None and view.enabled


# --- methods that send their codes: step 1 (where to, and the PIN), step 2 (the code) ---


def _oob_start_form(page: Page, method_type: str, *, value: str | None = None,
                    errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    field = destination_field(method_type) or "phone"
    if value is None:  # the account e-mail is the likely answer; a phone is never known
        value = page.user.email if page.user and field == "email" else ""
    errors = errors or {}
    focus = field if errors.get(field) or not value else "pin"
    return page.render("enroll/oob_start.html", status_code=status_code,
                       title=page.method_sentence(method_type, "enable"),
                       method_type=method_type, field=field, value=value, errors=errors,
                       focus=focus, phone_example=phone_example(page))


# The country of a page's phone example when the operator names none: the language's.
LANGUAGE_REGIONS = {"en": "GB", "ru": "RU"}


def phone_region(page: Page) -> str:
    """The country whose mobile number the phone field shows as its example: the
    operator's STEPUP_DEFAULT_PHONE_REGION (the country national numbers are read in),
    else the page language's (ru → RU, en → GB); one of STEPUP_PHONE_COUNTRIES when those
    are set and this one is not among them, so the example is never refused."""
    s = page.rt.settings
    region = (s.default_phone_region or LANGUAGE_REGIONS.get(page.lang, "GB")).upper()
    allowed = [c.upper() for c in s.phone_countries]
    return allowed[0] if allowed and region not in allowed else region


def phone_example(page: Page) -> str:
    return example_phone(phone_region(page)) or example_phone("GB") or ""


async def oob_code_page(page: Page, method_type: str, *, sent_to: str | None,
                        expires_in: int | None = None, resend_in: int = 0,
                        waiting: bool = False, error: str | None = None,
                        ticked: Mapping[str, bool] | None = None,
                        status_code: int = 200) -> Response:
    return page.render("enroll/oob_code.html", status_code=status_code,
                       title=page.method_sentence(method_type, "enable"),
                       method_type=method_type, sent_to=sent_to, expires_in=expires_in,
                       resend_in=resend_in, waiting=waiting, error=error,
                       **await choice(page, method_type, ticked))


def _error_field(err: DomainError, field: str) -> str:
    if err.field == field:
        return field
    if err.code == "pin_invalid" or err.field == "pin":
        return "pin"
    return "form"


def _enabled_at_once(method_type: str) -> bool:
    """A set of codes is enabled the moment the PIN is given: its PIN step is its last
    proof, so that is where it asks what it will protect."""
    return isinstance(registry.get(method_type), IssuesCodeSets)


async def _pin_form(page: Page, method_type: str, *, error: str | None = None,
                    ticked: Mapping[str, bool] | None = None, status_code: int = 200
                    ) -> Response:
    asks = await choice(page, method_type, ticked) if _enabled_at_once(method_type) else {}
    return page.render("enable_pin.html", status_code=status_code,
                       title=page.method_sentence(method_type, "enable"),
                       method_type=method_type, error=error, **asks)


@router.get("/settings/methods/{method_type}/enable")
async def enable_page(page: SignedIn, method_type: AvailableMethod) -> Response:
    if await _is_enabled(page, method_type):
        return redirect("/settings/methods")
    if destination_field(method_type):
        return _oob_start_form(page, method_type)
    return await _pin_form(page, method_type)


async def _enroll_page(page: Page, method_type: str, body: EnrollmentBody | None, *,
                       error: str | None = None, drift: bool = False,
                       ticked: Mapping[str, bool] | None = None,
                       status_code: int = 200) -> Response:
    """The method's own set-up page: ``<type>/setup.html`` in its package's templates;
    its confirm form asks what the method will protect, unless it is enabled already
    (a set of codes: the page then says what it protects)."""
    context: dict[str, Any] = {"method_type": method_type, "error": error, "drift": drift,
                               "phone_os": phone_os(page.request.headers.get("user-agent"))}
    if body is not None:  # the method says what its set-up page shows
        context.update(body.page_context())
    view = await method_view(page, method_type)
    if view is not None and view.enabled:
        context["protects_now"] = protection_sentence(page, view.protects)
    else:
        context.update(await choice(page, method_type, ticked))
    return page.render(f"{method_type}/setup.html", status_code=status_code,
                       title=page.method_sentence(method_type, "enable"),
                       **context)


def phone_os(user_agent: str | None) -> str | None:
    """The phone's system the page is read on ("Android", "iOS"), else None: the set-up
    lists the apps for it first."""
    agent = user_agent or ""
    if "Android" in agent:
        return "Android"
    if any(token in agent for token in ("iPhone", "iPad", "iPod")):
        return "iOS"
    return None


@router.post("/settings/methods/{method_type}/enable")
async def enable_submit(page: SignedIn, form: UserForm, method_type: AvailableMethod
                        ) -> Response:
    if destination_field(method_type):
        return await _oob_enable(page, method_type, form)
    ticked = chosen(page, form)
    start = await refused(
        page, methods.begin_enrollment(page.rt, deps.actor(page.request), page.me.id,
                                       method_type, form.get("pin", "").strip(), {},
                                       protects=ticked),
        lambda r: _pin_form(page, method_type, error=r.message, ticked=ticked,
                            status_code=r.status))
    return await _enroll_page(page, method_type, start.body)


async def _oob_enable(page: UserPage, method_type: str, form: Mapping[str, str]) -> Response:
    field = destination_field(method_type) or "phone"
    value = form.get(field, "").strip()
    start = await refused(
        page, methods.begin_enrollment(page.rt, deps.actor(page.request), page.me.id,
                                       method_type, form.get("pin", "").strip(),
                                       {field: value} if value else {}),
        lambda r: _oob_start_form(page, method_type, value=value, errors={
            _error_field(r.error, field): page.send_error(r.error)}, status_code=r.status))
    return await oob_code_page(page, method_type, **start.body.page_context())


@router.post("/settings/methods/{method_type}/check-number")
async def check_number(page: SignedIn, form: UserForm, method_type: str) -> Response:
    """Would step 1 accept this phone number? portal.js asks before it sends the form,
    so that a refused number is told while the PIN is still in its field (the server
    never writes a PIN back into a page). The form carries the CSRF token and the
    number, never the PIN. ``{"accepted": true}``, or ``{"accepted": false, "field",
    "reason", "message"}`` with the reason step 1 would show. Anything else (not signed
    in: the login page's redirect; a bad CSRF token: the 403 page; not a method that
    sends to a phone, or too many checks: a problem document) and the script sends the
    form as it is, for the page's own answer."""
    if not registry.is_available(method_type) or destination_field(method_type) != "phone":
        return _problem(page, NotFound("There is no such method."))
    try:
        await methods.check_destination(page.rt, page.me.id, method_type,
                                        {"phone": form.get("phone", "").strip()})
    except ValidationFailed as err:
        return JSONResponse({"accepted": False, "field": "phone", "reason": err.situation,
                             "message": page.send_error(err)},
                            headers={"Content-Language": page.lang})
    except DomainError as err:
        return _problem(page, err)
    return JSONResponse({"accepted": True})


def _problem(page: Page, err: DomainError) -> Response:
    return problems.from_domain(err, page.error_message(err), language=page.lang)


@router.get("/settings/methods/{method_type}/confirm")
async def confirm_page(page: SignedIn, method_type: AvailableMethod) -> Response:
    """Enter code: the step 2 of an enrollment that is waiting for its code."""
    if destination_field(method_type) is None:
        not_found(page)
    view = await method_view(page, method_type)
    if view is None or not view.pending:
        return redirect("/settings/methods")
    return await oob_code_page(page, method_type, sent_to=view.destination, waiting=True)


@router.post("/settings/methods/{method_type}/confirm")
async def confirm_submit(page: SignedIn, form: UserForm, method_type: AvailableMethod
                         ) -> Response:
    ticked = chosen(page, form)  # a refused code keeps the boxes as the user left them

    async def redraw(r: Refusal) -> Response:
        if destination_field(method_type):
            view = held(r.error, MethodView) or await method_view(page, method_type)
            if view is not None and view.enabled:
                return redirect("/settings/methods")
            if view is None or not view.pending:  # a failed send dropped it: start again
                return _oob_start_form(page, method_type, errors={"form": page._(
                    "No code is waiting to be entered. Start again: enter where to send "
                    "the code.")}, status_code=r.status)
            return await oob_code_page(page, method_type, sent_to=view.destination,
                                       waiting=True, error=r.message, ticked=ticked,
                                       status_code=r.status)
        # A typo must not cost the set-up: the same QR code and key again, read from the
        # pending row for the holder of the page's ticket (never from the browser). A
        # method that cannot show it again keeps only the code field.
        body = await pending_setup.show_again(page.rt, page.me.id, method_type,
                                              form.get("setup", ""))
        return await _enroll_page(page, method_type, body, error=r.message,
                                  drift="clock_drift_minutes" in r.error.extra,
                                  ticked=ticked, status_code=r.status)

    await refused(page, methods.confirm_enrollment(page.rt, deps.actor(page.request),
                                                   page.me.id, method_type,
                                                   form.get("code", ""), ticked), redraw)
    return redirect(methods_url("enabled", method_type))


# --- a new set of codes (backup codes) -------------------------------------------------


def _regenerate_form(page: Page, method_type: str, *, error: str | None = None,
                     status_code: int = 200) -> Response:
    return page.render(
        "code_form.html", status_code=status_code, title=page._("Create new backup codes"),
        method_type=method_type, action=f"/settings/methods/{method_type}/regenerate",
        hidden={}, error=error, submit=page._("Verify"), sends_code=False,
        intro=page._("Enter one of your current backup codes. A new list of codes will be "
                     "created, and every old code will stop working."),
    )


@router.get("/settings/methods/{method_type}/regenerate")
async def regenerate_page(page: SignedIn, method_type: CodeSetMethod) -> Response:
    return _regenerate_form(page, method_type)


@router.post("/settings/methods/{method_type}/regenerate")
async def regenerate_submit(page: SignedIn, form: UserForm, method_type: CodeSetMethod
                            ) -> Response:
    codes = await refused(
        page, methods.regenerate_backup_codes(page.rt, deps.actor(page.request), page.me.id,
                                              form.get("code", "")),
        lambda r: _regenerate_form(page, method_type, error=r.message, status_code=r.status))
    return page.render(f"{method_type}/setup.html", title=page._("Your new backup codes"),
                       method_type=method_type, codes=codes, regenerated=True)
