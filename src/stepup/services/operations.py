"""Protected operations (withdrawals), confirmed in two steps: the PIN, then a security
code bound to this exact operation (dynamic linking, PSD2 RTS art. 5).

An operation's details never change after creation; a code sent or entered for one
operation cannot confirm another. Confirmation signs a receipt.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain import operations as ops
from stepup.domain import refusals
from stepup.domain.destinations import mask
from stepup.domain.errors import (
    Conflict,
    MethodNotAllowed,
    MethodNotEnabled,
    NoMethodForOperation,
    NotFound,
    OperationAlreadyConfirmed,
    OperationExpired,
    PinRequired,
    StateChanged,
    ValidationFailed,
)
from stepup.domain.hashing import new_id
from stepup.domain.policy import (
    Completer,
    Completing,
    Purpose,
    Refusal,
    completers,
    nothing_confirms,
)
from stepup.methods.base import ChallengeSent
from stepup.services import audit, challenges, receipts, webhooks
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.services.verification import check_code, check_pin, commit_and_raise, prepare
from stepup.store import operations as store
from stepup.store import queries
from stepup.store.models import Method as MethodRow
from stepup.store.models import Operation, User

PIN_REQUIRED = "pin_required"
CODE_REQUIRED = "code_required"
CONFIRMED = "confirmed"
EXPIRED = "expired"


@dataclass
class OperationView:
    id: str
    type: str
    status: str
    summary: str
    details: dict[str, str]
    expires_at: Any
    methods: list[dict[str, Any]] = field(default_factory=list)
    receipt: str | None = None
    method: str | None = None
    confirmed_at: Any = None
    user_id: str = ""
    # The code goes to the account e-mail because no method protects this operation.
    account_email: bool = False


def types(rt: Runtime) -> dict[str, ops.OperationType]:
    return ops.parse_types(rt.settings.operation_types)


def _status(rt: Runtime, op: Operation) -> str:
    if op.status in (PIN_REQUIRED, CODE_REQUIRED) and op.expires_at <= rt.clock.now():
        return EXPIRED
    return op.status


def _view(rt: Runtime, op: Operation,
          choices: tuple[list[dict[str, Any]], bool] | None = None) -> OperationView:
    methods, account_email = choices or ([], False)
    kind = types(rt).get(op.type) or ops.OperationType(op.type, op.type, (), "")
    return OperationView(id=op.id, type=op.type, status=_status(rt, op),
                         summary=ops.summary(kind, op.details), details=dict(op.details),
                         expires_at=op.expires_at, methods=methods or [],
                         receipt=op.receipt, method=op.method, confirmed_at=op.confirmed_at,
                         user_id=op.user_id, account_email=account_email)


async def create(rt: Runtime, actor: Actor, user_id: str, op_type: str, details: Any,
                 *, created_by: str = "user") -> OperationView:
    kind = types(rt).get(op_type)
    if kind is None or op_type not in rt.settings.operations:
        raise ValidationFailed(f"Unknown operation type '{op_type}'.", field="type")
    clean = ops.check_details(kind, details)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if user.must_enroll and await queries.count_enabled_methods(db, user.id) == 0:
            # Reset by support: nothing is protected until the user sets a method up again.
            raise Conflict("Set up an authentication method first: your two-factor "
                           "authentication was reset.")
        answer = await confirming_methods(rt, db, user, op_type)
        if nothing_confirms(answer, email_fallback=_email_fallback(rt)):
            # Policy always, nothing switched on, and the account e-mail not verified: a
            # code sent there would go to an address nobody proved is theirs.
            raise NoMethodForOperation()
        if not user.pin_hash and not answer:
            # No PIN to ask and (policy if_protected) no method to ask: nothing could ever
            # confirm it, and confirming it unasked would approve what nobody saw.
            raise Conflict("This user has no PIN and no method that protects this "
                           "operation: nothing could confirm it.")
        now = rt.clock.now()
        op = Operation(id=new_id(), user_id=user.id, type=op_type, details=clean,
                       digest=ops.details_digest(op_type, clean),
                       status=PIN_REQUIRED if user.pin_hash else CODE_REQUIRED,
                       created_by=created_by, created_at=now,
                       expires_at=now + timedelta(seconds=rt.settings.operation_ttl_seconds),
                       pin_verified_at=None, confirmed_at=None, method=None, receipt_id=None,
                       receipt=None)
        db.add(op)
        await audit.record(db, rt.clock, actor, "operation.created", user.id, operation=op.id,
                           type=op_type, details=clean, by=created_by)
        await db.commit()
        choices = (await _method_entries(rt, db, user, op)) if op.status == CODE_REQUIRED \
            else None
        return _view(rt, op, choices)


async def _load(rt: Runtime, db: AsyncSession, user_id: str, operation_id: str
                ) -> tuple[Operation, User]:
    op = await store.get_operation(db, operation_id)
    if op is None or op.user_id != user_id:
        raise NotFound("No such operation.")
    user = await queries.get_user(db, user_id)
    if user is None:
        raise NotFound("No such operation.")
    if not hmac.compare_digest(ops.details_digest(op.type, dict(op.details)), op.digest):
        # What the user was shown (and what a code was sent for) is no longer what is
        # stored: never confirm, never send a code for, details other than the original.
        raise Conflict(situation="operation_details_changed")
    status = _status(rt, op)
    if status == EXPIRED:
        raise OperationExpired()
    if status == CONFIRMED:
        raise OperationAlreadyConfirmed()
    return op, user


def _email_fallback(rt: Runtime) -> bool:
    return rt.settings.withdrawal_code == "always"


def _answer(rt: Runtime, user: User, rows: Sequence[MethodRow], op_type: str
            ) -> list[Completer[MethodRow]]:
    """What may confirm this type of operation, as the policy answers it: the methods
    switched on for it; with none, under policy ``always``, the account e-mail once it
    is verified."""
    return completers(Completing.operation(op_type), rows, challenges.registered(),
                      email_fallback=_email_fallback(rt), email_verified=user.email_verified)


async def confirming_methods(rt: Runtime, db: AsyncSession, user: User, op_type: str
                             ) -> list[Completer[MethodRow]]:
    """What may confirm this type of operation for this user."""
    return _answer(rt, user, await queries.list_methods(db, user.id), op_type)


@dataclass(frozen=True)
class Confirmation:
    """What confirms an operation of one type for one user, as the pages tell it — read
    from the same policy answer the operation itself uses (``confirming_methods``)."""

    methods: list[str]  # the types of the methods switched on for it
    account_email: str | None  # the masked account e-mail, when it alone confirms
    pin_alone: bool  # policy if_protected with nothing switched on: the PIN confirms
    nothing: bool  # refused (no_method_for_operation): verify the e-mail or switch one on


async def confirmation(rt: Runtime, user: User, op_type: str) -> Confirmation:
    async with rt.read() as db:
        answer = await confirming_methods(rt, db, user, op_type)
    email = next((c for c in answer if c.account_email), None)
    return Confirmation(
        methods=[c.type for c in answer if not c.account_email],
        account_email=mask(email.type, user.email) if email is not None else None,
        pin_alone=not answer and not _email_fallback(rt),
        nothing=nothing_confirms(answer, email_fallback=_email_fallback(rt)))


async def _method_entries(rt: Runtime, db: AsyncSession, user: User, op: Operation
                          ) -> tuple[list[dict[str, Any]], bool]:
    """The choices shown for the code step, and whether the code goes to the account
    e-mail only because nothing protects the operation (policy ``always``)."""
    answer = await confirming_methods(rt, db, user, op.type)
    out = []
    for completer in answer:
        entry: dict[str, Any] = {"type": completer.type}
        masked = rt.destinations.masked(
            completer.type, challenges.method_row(rt, user, completer))
        if masked:
            entry["destination"] = masked
        out.append(entry)
    return out, any(c.account_email for c in answer)


async def _current_view(rt: Runtime, db: AsyncSession, user: User, op: Operation
                        ) -> OperationView:
    """The operation as the page shows it now (with its methods while it waits for a
    code)."""
    waiting = _status(rt, op) == CODE_REQUIRED
    return _view(rt, op, await _method_entries(rt, db, user, op) if waiting else None)


async def submit_pin(rt: Runtime, actor: Actor, user_id: str, operation_id: str, pin: str
                     ) -> OperationView:
    async with rt.db() as db:
        op, user = await _load(rt, db, user_id, operation_id)
        if op.status != PIN_REQUIRED:
            raise Conflict(situation="operation_pin_accepted")
        # A wrong PIN leaves it waiting for the PIN: the page shows it as read here.
        with refusals.keeping(lambda: _view(rt, op)):
            await check_pin(rt, db, actor, user, pin, method=f"operation:{op.type}")
        rows = await confirming_methods(rt, db, user, op.type)
        now = rt.clock.now()
        if nothing_confirms(rows, email_fallback=_email_fallback(rt)):
            # Switched off or unverified since the operation was created: never let the
            # PIN alone confirm what policy always says needs a code. (The PIN passed:
            # what was recorded of it is kept.)
            await commit_and_raise(db, NoMethodForOperation())
        if not rows:  # if_protected and nothing protects it: the PIN alone confirms
            view = await _finish(rt, db, actor, op, user, "pin")
            await db.commit()
            return view
        if not await store.set_status(db, op.id, from_status=PIN_REQUIRED,
                                      to_status=CODE_REQUIRED, pin_verified_at=now):
            raise StateChanged(situation="operation")
        op.status = CODE_REQUIRED
        await audit.record(db, rt.clock, actor, "operation.pin_passed", user.id, operation=op.id)
        await db.commit()
        return _view(rt, op, await _method_entries(rt, db, user, op))


def _purpose(rt: Runtime, op: Operation) -> Purpose:
    kind = types(rt).get(op.type)
    details = dict(op.details)
    if kind is not None:
        details["summary"] = ops.summary(kind, op.details)
    return Purpose.operation(op.id, details)


async def _chosen(rt: Runtime, db: AsyncSession, user: User, op: Operation, method: str
                  ) -> Completer[MethodRow]:
    if op.status == PIN_REQUIRED:
        raise PinRequired()
    rows = await queries.list_methods(db, user.id)
    return challenges.choose(_answer(rt, user, rows, op.type), rows, method, lambda refusal: (
        MethodNotAllowed(f"'{method}' is not switched on for this type of operation.")
        if refusal == Refusal.NOT_ALLOWED
        else MethodNotEnabled(f"'{method}' cannot confirm this operation.")))


async def challenge(rt: Runtime, actor: Actor, user_id: str, operation_id: str, method: str
                    ) -> ChallengeSent:
    async def find(db: AsyncSession) -> challenges.Target:
        op, user = await _load(rt, db, user_id, operation_id)
        return challenges.Target(user, await _chosen(rt, db, user, op, method),
                                 _purpose(rt, op))

    return await challenges.issue(rt, actor, find)


async def confirm(rt: Runtime, actor: Actor, user_id: str, operation_id: str, method: str,
                  code: str) -> OperationView:
    prepared = await prepare(rt, method, code, user_id)
    async with rt.db() as db:
        op, user = await _load(rt, db, user_id, operation_id)
        # Refused, the page shows the operation as read here, not read a second time.
        before = await _current_view(rt, db, user, op)
        with refusals.keeping(lambda: before):
            chosen = await _chosen(rt, db, user, op, method)
            await check_code(rt, db, actor, user, challenges.method_row(rt, user, chosen),
                             code, _purpose(rt, op), prepared=prepared)
        view = await _finish(rt, db, actor, op, user, chosen.type)
        await db.commit()
        return view


async def _finish(rt: Runtime, db: AsyncSession, actor: Actor, op: Operation, user: User,
                  method: str) -> OperationView:
    """Confirm and sign; ``user`` is the operation's user row (its app is the receipt's
    audience)."""
    now = rt.clock.now()
    op.receipt_id = new_id()
    token = await receipts.sign(rt, db, receipts.claims(rt, op, user, method, now))
    if not await store.set_status(db, op.id, from_status=op.status, to_status=CONFIRMED,
                                  confirmed_at=now, method=method, receipt_id=op.receipt_id,
                                  receipt=token):
        raise OperationAlreadyConfirmed()
    op.status, op.confirmed_at, op.method, op.receipt = CONFIRMED, now, method, token
    await audit.record(db, rt.clock, actor, "operation.confirmed", op.user_id, operation=op.id,
                       type=op.type, method=method)
    await webhooks.enqueue(rt, db, "operation.confirmed", {
        "operation": {"id": op.id, "type": op.type, "details": op.details,
                      "user_id": op.user_id, "status": CONFIRMED, "method": method,
                      "confirmed_at": now.isoformat().replace("+00:00", "Z")},
        "receipt": token}, user=user)
    return _view(rt, op)


async def get(rt: Runtime, user_id: str, operation_id: str) -> OperationView:
    async with rt.db() as db:
        op = await store.get_operation(db, operation_id)
        if op is None or op.user_id != user_id:
            raise NotFound("No such operation.")
        choices = None
        if _status(rt, op) == CODE_REQUIRED:
            user = await queries.get_user(db, user_id)
            if user is not None:
                choices = await _method_entries(rt, db, user, op)
        return _view(rt, op, choices)
