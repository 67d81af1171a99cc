"""Headless verification: a portal that keeps its own login page asks StepUp to send and
check codes (like privacyIDEA's /validate/check or Twilio Verify), with every guarantee
of StepUp's own pages — single use, replay refusal, locks, caps and audit.

``purpose`` is ``login`` or an operation id, and the user's switches hold as on StepUp's
own pages — the policy's one answer (``domain/policy.completers``): for login, a method
that protects login, or backup codes; for an operation, a method switched on for its type (the
operation's own confirmation, which signs the receipt). Any other enabled method answers
``method_not_allowed_for_purpose`` before its code is looked at, so it is never counted
as a guess.

A headless login is audited as ``login.succeeded`` (``via: "api"``) and goes through the
new-device check when the portal forwarded its user's context (``StepUp-End-User-IP`` or
``-Agent``); without it nothing can be told about the device, and the check is audited as
``code.verified``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from stepup import metrics
from stepup.domain.errors import (
    MethodNotAllowed,
    MethodNotEnabled,
    NotFound,
    ValidationFailed,
)
from stepup.domain.policy import LOGIN, Completer, Completing, Purpose, Refusal, completers
from stepup.methods import registry
from stepup.methods.base import ChallengeSent
from stepup.services import audit, challenges, devices, operations, ratelimit
from stepup.services.runtime import Actor, Runtime
from stepup.services.verification import check_code, needs_preparing, prepare
from stepup.store import queries, step_spends
from stepup.store.api_keys import CheckRead, ReadAhead, riding
from stepup.store.driver import unbegun
from stepup.store.models import Method as MethodRow
from stepup.store.models import User
from stepup.store.step_spends import RideRefused


@dataclass
class Verification:
    valid: bool
    method: str
    verified_at: datetime
    receipt: str | None = None
    backup_codes_remaining: int | None = None


def _purpose_kind(purpose: str) -> str:
    if purpose == LOGIN:
        return LOGIN
    if not purpose or len(purpose) > 64 or not purpose.isalnum():
        raise ValidationFailed("purpose is 'login' or an operation id.", field="purpose")
    return "operation"


def _for_login(user: User | None, row: MethodRow | None, method_type: str
               ) -> tuple[User, MethodRow]:
    """The user and their method of this type, if the policy lets it complete a login.

    Only that method's row is read: whether a method may complete a login depends on
    its row alone (the login step's "nothing protects login" and "no codes left" are
    about what it offers; the portal names the method and decided to ask)."""
    if user is None:
        raise NotFound("No such user.")
    rows = [row] if row is not None else []
    chosen = challenges.choose(
        completers(Completing.login(), rows, challenges.registered()), rows, method_type,
        lambda refusal: MethodNotAllowed(
            f"The user has not switched '{method_type}' on for login: use a method that "
            "protects login, or a backup code.") if refusal == Refusal.NOT_ALLOWED
        else MethodNotEnabled(f"The method '{method_type}' is not enabled for this user."))
    assert chosen.row is not None  # a login is never completed by the account e-mail
    return user, chosen.row


async def challenge(rt: Runtime, actor: Actor, user_id: str, method_type: str, purpose: str
                    ) -> ChallengeSent:
    if _purpose_kind(purpose) == "operation":
        return await operations.challenge(rt, actor, user_id, purpose, method_type)
    registry.get(method_type)

    async def find(db: AsyncSession) -> challenges.Target:
        user, row = _for_login(*await queries.get_user_and_method(db, user_id, method_type),
                               method_type)
        return challenges.Target(user, Completer(row.type, row), Purpose.login())

    return await challenges.issue(rt, actor, find, no_code=(
        "This method does not send codes: the user reads the code from it."))


def check_read(user_id: str, body: object) -> CheckRead | None:
    """The first read of a verify of ``body`` (the request's JSON, not yet validated),
    for the API key's read to fetch with it (``apikeys.held``): a login's check of a
    method that needs nothing prepared. ``None`` where the body asks for anything else,
    or cannot be told; ``verify`` uses the read only if it is what it would have read."""
    if not isinstance(body, dict) or body.get("purpose", LOGIN) != LOGIN:
        return None
    method_type = body.get("method")
    if not isinstance(method_type, str) or registry.find(method_type) is None \
            or needs_preparing(method_type):
        return None
    return CheckRead(user_id, method_type, ratelimit.scopes_of(method_type))


async def verify(rt: Runtime, actor: Actor, user_id: str, method_type: str, code: str,
                 purpose: str, *, db: AsyncSession | None = None,
                 ahead: ReadAhead | None = None) -> Verification:
    """``db``: an open transaction to do the check in (the one the API key's call is
    counted in, ``apikeys.held``), committed with the count; by default one of its own. A
    check that opens transactions of its own (an operation's, or a slow hash made with
    none open) commits ``db`` first. ``ahead``: ``check_read``'s answer, read in ``db``
    with the key."""
    if _purpose_kind(purpose) == "operation":
        if db is not None:
            await db.commit()
        view = await operations.confirm(rt, actor, user_id, purpose, method_type, code)
        return Verification(True, method_type, view.confirmed_at, receipt=view.receipt)
    registry.get(method_type)
    if db is not None and needs_preparing(method_type):
        await db.commit()
        db = None
    if db is None:
        prepared = await prepare(rt, method_type, code, user_id)
        async with rt.db() as own:
            return await _verify_login(rt, own, actor, user_id, method_type, code, prepared)
    return await _verify_login(rt, db, actor, user_id, method_type, code, {}, ahead)


async def _verify_login(rt: Runtime, db: AsyncSession, actor: Actor, user_id: str,
                        method_type: str, code: str, prepared: dict[bytes, bytes],
                        ahead: ReadAhead | None = None, *, ride: bool = True
                        ) -> Verification:
    """``ride``: a right code's spend may ride in its audit event (store/step_spends.py)
    where that is the call's one write; if it cannot after all, nothing was written and
    the check runs again the ordinary way."""
    scopes = ratelimit.scopes_of(method_type)
    if ahead is not None and ahead.asked == CheckRead(user_id, method_type, scopes):
        user, row, guards = queries.user_method_and_guards(db, ahead.row, scopes)
    else:
        user, row, guards = await queries.get_user_method_and_guards(
            db, user_id, method_type, scopes)
    user, row = _for_login(user, row, method_type)
    context = bool(actor.ip or actor.user_agent)
    # With the user's context the event is a login's (a device checked, maybe a notice
    # queued): more than one write. A guard with failures to clear is one more, and so
    # is the key's last use, recorded once a minute: all of a call's writes commit
    # together.
    count = riding(db)
    rides = ride and not context and unbegun(db) and count is not None \
        and not count.touches \
        and not ratelimit.Guards(guards).needs_clearing_after(method_type)
    if rides:
        step_spends.allow(db)
    try:
        verified = await check_code(rt, db, actor, user, row, code, Purpose.login(),
                                    prepared=prepared, guards=guards)
        now = rt.clock.now()
        if context:
            await devices.login_succeeded(rt, db, actor, user, method_type, last=True,
                                          via="api")
        else:
            await audit.record_last(db, rt.clock, actor, "code.verified", user,
                                    method=method_type, purpose=LOGIN)
        if rides and step_spends.end(db) is not None:
            raise RideRefused  # a spend handed over that no event took: never kept
    except RideRefused:
        # Nothing kept: read the user and method again, as they are now, and check.
        step_spends.end(db)
        db.expunge(user)
        db.expunge(row)
        await db.rollback()  # (nothing to undo but in a spend that no event took)
        return await _verify_login(rt, db, actor, user_id, method_type, code, prepared,
                                   ride=False)
    finally:
        step_spends.end(db)
    if rides:
        metrics.verification(row.type, "valid")  # (check_code left it to the event)
    await db.commit()
    return Verification(True, method_type, now,
                        backup_codes_remaining=verified.notes.get("remaining"))
