"""Withdrawals in the portal: the form that starts one, and the one page that confirms it.

``/operations/{id}`` shows what is being confirmed (amount, currency, the whole
destination, as the messages write it too) and, beside it, the step the operation waits
for: the PIN (step 1), then a security code from a method that protects the operation
(step 2; dynamic linking: the code is typed next to the details it confirms), then the
signed receipt. Operations that a portal created through the integration API are
confirmed on the same page; a visitor who is not logged in comes back here after login.

A refused step never ends in an error page: the operation is read again and shown in its
current state (expired, already confirmed, waiting for the PIN) with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial

from fastapi import Request
from fastapi.responses import Response

from stepup import formats
from stepup.domain import operations as ops
from stepup.domain.errors import (
    Conflict,
    DomainError,
    NoMethodForOperation,
    NotFound,
    RateLimited,
)
from stepup.domain.refusals import held
from stepup.methods.base import ChallengeSent
from stepup.services import operations, recovery
from stepup.services.operations import OperationView
from stepup.web import deps
from stepup.web.portal.plumbing import (
    Refusal,
    SignedIn,
    SignedInReturning,
    UserForm,
    portal_router,
    refused,
    status_for,
)
from stepup.web.portal.render import (
    N_,
    Page,
    login_fallback,
    passkey_request,
    redirect,
    sends_codes,
)

router = portal_router()

WITHDRAWAL = "withdrawal"
FIELD_NAMES = {"amount": N_("Amount"), "currency": N_("Currency"),
               "destination": N_("Destination")}
# Currencies offered as suggestions on the form; any code like these is accepted.
SUGGESTED_CURRENCIES = ("USD", "EUR", "GBP", "BTC", "ETH", "USDT", "USDC", "LTC", "TON")

@dataclass
class Shown:
    """An operation's details as the page lays them out."""

    amount: str | None = None
    currency: str | None = None
    destination: str | None = None
    others: list[tuple[str, str]] = field(default_factory=list)


def shown(page: Page, view: OperationView) -> Shown:
    d = view.details
    # The amount as the page's language writes numbers ("1 234,50" in Russian).
    amount = d.get("amount")
    out = Shown(amount=formats.amount(amount, d.get("currency"), page.lang) if amount else None,
                currency=d.get("currency"), destination=d.get("destination"))
    out.others = [(page._(FIELD_NAMES[k]) if k in FIELD_NAMES else k.replace("_", " ")
                   .capitalize(), v) for k, v in d.items()
                  if k not in ("amount", "currency", "destination")]
    return out


def method_label(page: Page, method_type: str | None) -> str:
    if method_type == "pin":
        return page._("PIN")
    return page.proof_name(method_type or "")


async def _is_fallback(page: Page, view: OperationView) -> bool:
    """True when the code goes to the account e-mail only because no method protects
    this operation (policy ``always``), rather than by the user's choice: the policy's
    answer, as the service gave it."""
    return view.account_email


async def _show(page: Page, view: OperationView, *, chosen: str | None = None,
                error: str | None = None, sent: ChallengeSent | None = None, wait: int = 0,
                status_code: int = 200) -> Response:
    choices = sorted(view.methods, key=lambda m: login_fallback(m["type"]))
    types = [m["type"] for m in choices]
    if chosen not in types:
        chosen = next((t for t in types if not login_fallback(t)), types[0] if types else None)
    current = next((m for m in choices if m["type"] == chosen), None)
    passkey, problem = None, None
    if view.status == operations.CODE_REQUIRED and page.user is not None:
        user_id = page.user.id
        passkey, problem = await passkey_request(page, chosen, lambda t: operations.challenge(
            page.rt, deps.actor(page.request), user_id, view.id, t))
    return page.render(
        "operations/show.html", status_code=status_code, passkey=passkey,
        title=page.operation_name(view.type), op=view, shown=shown(page, view),
        choices=choices if len(choices) > 1 else [], current=current, error=error or problem,
        sent=sent, wait=sent.resend_in if sent else wait, sends_code=sends_codes(chosen),
        fallback=view.status == operations.CODE_REQUIRED and await _is_fallback(page, view),
        method_label=partial(method_label, page), withdrawal=view.type == WITHDRAWAL,
        when=page.local_when,
    )


def _missing(page: Page) -> Response:
    return page.render("error.html", status_code=404, title=page._("Operation not found"),
                       message=page._("There is no such operation for this account. If a "
                                      "portal sent you here, check that you are logged in "
                                      "with the account it belongs to."))


def _reason(page: Page, err: DomainError) -> str:
    return page.error_message(err)  # the catalogue tells every refusal (domain/texts.py)


async def _refused(page: Page, op_id: str, err: DomainError, *, chosen: str | None = None,
                   sent: ChallengeSent | None = None, wait: int = 0,
                   message: str | None = None) -> Response:
    """The operation in its current state, with why the step was refused."""
    if isinstance(err, NotFound):
        return _missing(page)
    assert page.user is not None
    view = held(err, OperationView)  # as the refused step read it
    if view is None:
        try:
            view = await operations.get(page.rt, page.user.id, op_id)
        except NotFound:
            return _missing(page)
    return await _show(page, view, chosen=chosen, error=message or _reason(page, err),
                       sent=sent, wait=wait, status_code=status_for(err))




# --- a new withdrawal ------------------------------------------------------------------


def _new_form(page: Page, *, values: Mapping[str, str] | None = None,
              errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return page.render("operations/new.html", status_code=status_code,
                       title=page._("New withdrawal"), values=values or {},
                       errors=errors or {}, currencies=SUGGESTED_CURRENCIES)


def _clean_amount(raw: str) -> str:
    # "1 000,50" as typed in many locales: spaces go, a decimal comma becomes a point.
    text = "".join(raw.split())
    return text.replace(",", ".") if text.count(",") == 1 and "." not in text else text


def _places_error(page: Page, amount: str, currency: str) -> str | None:
    places = ops.PRECISION.get(currency, ops.DEFAULT_PRECISION)
    try:
        exponent = Decimal(amount).normalize().as_tuple().exponent
    except InvalidOperation:
        return None
    if not isinstance(exponent, int) or -exponent <= places:
        return None
    if places == 0:
        return page._("%(currency)s amounts are whole numbers.", currency=currency)
    return page.ngettext("%(currency)s amounts have at most %(num)d decimal place.",
                         "%(currency)s amounts have at most %(num)d decimal places.",
                         places, currency=currency)


# What the domain's ``kind`` of a refused destination is called on the form.
DESTINATION_KINDS = {"bech32": N_("This Bitcoin-style (bech32) address"),
                     "base58check": N_("This address"),
                     "eip55": N_("This Ethereum address"), "iban": N_("This IBAN")}


def _destination_error(page: Page, err: DomainError) -> str:
    reason = err.extra.get("reason")
    if reason == "not_ascii":
        return page._("The destination has characters that only look like Latin letters, "
                      "digits or spaces (another alphabet, a special space). Type it again "
                      "or copy it from a source you trust.")
    if reason == "spaces":
        return page._("An address has no spaces inside: check that it was copied whole.")
    if reason == "checksum":
        kind = DESTINATION_KINDS.get(str(err.extra.get("kind")), N_("This address"))
        return page._("%(what)s is not valid: its check digits do not match. Check it for a "
                      "typo or a missing character.", what=page._(kind))
    return page._("Enter the destination: at most 200 characters, without hidden or "
                  "control characters.")


def _detail_error(page: Page, err: DomainError, values: Mapping[str, str]) -> dict[str, str]:
    name = (err.field or "").removeprefix("details.")
    if name == "amount":
        return {name: _places_error(page, values["amount"], values["currency"])
                or page._("Enter an amount more than zero, like 0.25.")}
    if name == "currency":
        return {name: page._("Enter a currency code, like USD or BTC.")}
    if name == "destination":
        return {name: _destination_error(page, err)}
    if isinstance(err, NoMethodForOperation):
        return {"form": page._("Nothing can confirm a withdrawal yet: verify your e-mail "
                               "address, or switch on a method for withdrawals in Settings "
                               "→ Authentication methods.")}
    if isinstance(err, Conflict):
        return {"form": page._("Withdrawals need a PIN or a method that protects them. "
                               "Enable a method in Settings → Authentication methods.")}
    return {"form": page.error_message(err)}


@router.get("/operations/new")
async def new_page(page: SignedInReturning) -> Response:
    if await recovery.needs_enrolment(page.rt, page.me.id):
        return redirect("/settings/methods")  # after a support reset: a method first
    return _new_form(page)


@router.post("/operations/new")
async def new_submit(page: SignedIn, form: UserForm) -> Response:
    if await recovery.needs_enrolment(page.rt, page.me.id):
        return redirect("/settings/methods")
    values = {"amount": _clean_amount(form.get("amount", "")),
              "currency": form.get("currency", "").strip().upper(),
              "destination": form.get("destination", "").strip()}
    view = await refused(
        page, operations.create(page.rt, deps.actor(page.request), page.me.id, WITHDRAWAL,
                                dict(values)),
        lambda r: _new_form(page, values=values, errors=_detail_error(page, r.error, values),
                            status_code=r.status))
    return redirect(f"/operations/{view.id}")


# --- confirming it ---------------------------------------------------------------------


@router.get("/operations/{op_id}")
async def operation_page(op_id: str, request: Request, page: SignedInReturning) -> Response:
    try:
        view = await operations.get(page.rt, page.me.id, op_id)
    except NotFound:
        return _missing(page)
    return await _show(page, view, chosen=request.query_params.get("method"))


@router.post("/operations/{op_id}/pin")
async def pin_submit(op_id: str, page: SignedIn, form: UserForm) -> Response:
    await refused(page, operations.submit_pin(page.rt, deps.actor(page.request), page.me.id,
                                              op_id, form.get("pin", "").strip()),
                  lambda r: _refused(page, op_id, r.error))
    return redirect(f"/operations/{op_id}")


@router.post("/operations/{op_id}/send")
async def send_code(op_id: str, page: SignedIn, form: UserForm) -> Response:
    """An out-of-band method sends a code bound to this operation."""
    method = form.get("method", "")

    async def redraw(r: Refusal) -> Response:
        err = r.error
        wait = (err.retry_after or 0) if isinstance(err, RateLimited) else 0
        message = page.send_error(err) if not isinstance(err, Conflict) else None
        return await _refused(page, op_id, err, chosen=method, wait=wait, message=message)

    sent = await refused(page, operations.challenge(page.rt, deps.actor(page.request),
                                                    page.me.id, op_id, method), redraw)
    try:
        view = await operations.get(page.rt, page.me.id, op_id)
    except NotFound:
        return _missing(page)
    return await _show(page, view, chosen=method, sent=sent)


@router.post("/operations/{op_id}/confirm")
async def confirm_submit(op_id: str, page: SignedIn, form: UserForm) -> Response:
    method = form.get("method", "")
    await refused(page, operations.confirm(page.rt, deps.actor(page.request), page.me.id,
                                           op_id, method, form.get("code", "")),
                  lambda r: _refused(page, op_id, r.error, chosen=method))
    return redirect(f"/operations/{op_id}")

