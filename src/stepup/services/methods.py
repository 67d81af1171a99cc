"""Managing a user's authentication methods (Settings → Authentication methods).

Enabling needs the PIN plus proof of possession; every switch and every Disable needs a
current code from that same method (seed 000, steps 4–6). The last step of enabling may
also say what the method protects (``protects``): the proof that finishes the set-up (the
code, the passkey's answer; for a set of codes, the PIN) confirms that choice too, so no
second code is asked — it is audited as a switch and told in the enable notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain import refusals
from stepup.domain.clock import hour_window
from stepup.domain.errors import (
    Conflict,
    Forbidden,
    MethodAlreadyEnabled,
    MethodNotEnabled,
    MethodRequired,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from stepup.domain.policy import (
    Completing,
    MethodStatus,
    Purpose,
    completers,
    initial_protects,
)
from stepup.methods import registry
from stepup.methods.base import (
    ChallengeSent,
    ChecksDestination,
    EnrollmentStart,
    IssuesCodeSets,
    MethodView,
)
from stepup.services import audit, challenges, devices, notifications
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.services.verification import check_code, check_pin, prepare
from stepup.store import queries
from stepup.store.models import Method as MethodRow
from stepup.store.models import User


def _verifies_phone(method_type: str) -> bool:
    d = registry.descriptor(method_type)
    return d is not None and d.verifies_phone


async def list_views(rt: Runtime, user_id: str) -> list[MethodView]:
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        rows = {r.type: r for r in await queries.list_methods(db, user.id)}
        ctx = rt.method_context(db)
        return [await m.describe(ctx, user, rows.get(m.type)) for m in registry.available()]


async def view(rt: Runtime, db: AsyncSession, user: User, method_type: str) -> MethodView:
    row = await queries.get_method(db, user.id, method_type)
    return await registry.get(method_type).describe(rt.method_context(db), user, row)


async def enabled_row(db: AsyncSession, user: User, method_type: str, *, lock: bool = False
                      ) -> MethodRow:
    """The user's enabled row of this method (``lock``: held until commit), else
    MethodNotEnabled."""
    row = await queries.get_method(db, user.id, method_type, lock=lock)
    if row is None or row.status != MethodStatus.ENABLED:
        raise MethodNotEnabled(f"The method '{method_type}' is not enabled.")
    return row


async def changed(rt: Runtime, db: AsyncSession, actor: Actor, event: str, user: User, *,
                   phone: str | None = None, **data: Any) -> None:
    """Audit a change to the user's methods and tell the user (the event names the
    notice); any such change forgets remembered devices."""
    await audit.record(db, rt.clock, actor, event, user.id, **data)
    await notifications.notify(rt, db, user, event, actor=actor, phone=phone, **data)
    await devices.forget_all(rt, db, user.id, actor, reason=event)


def chosen_protects(rt: Runtime, protects: Mapping[str, bool] | None
                    ) -> dict[str, bool] | None:
    """The operations a user chose while enabling a method, checked before any work:
    an operation that is not configured is refused (``field="protects"``); naming none
    is no choice (the default applies, and no switch is audited)."""
    if not protects:
        return None
    unknown = set(protects) - set(rt.settings.operations)
    if unknown:
        raise ValidationFailed(f"Unknown operation(s): {', '.join(sorted(unknown))}",
                               field="protects")
    return {k: bool(v) for k, v in protects.items()}


def suggested_protects(rt: Runtime, method_type: str, *, first_method: bool
                       ) -> dict[str, bool]:
    """What the last step of a set-up offers ticked: every operation — enabling a method
    is meant to protect something — except for a login fallback (backup codes), which
    already lets the user in when the usual method is lost and is kept for that (seed
    002): nothing ticked, unless it is the user's first method, which protects login."""
    d = registry.descriptor(method_type)
    if d is not None and d.login_fallback:
        return initial_protects(rt.settings.operations, first_method=first_method)
    return {op: True for op in rt.settings.operations}


async def suggestion(rt: Runtime, user_id: str, method_type: str) -> dict[str, bool]:
    """``suggested_protects`` for this user (is it their first method?)."""
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        first = await queries.count_enabled_methods(db, user.id) == 0
    return suggested_protects(rt, method_type, first_method=first)


def _set_protects(rt: Runtime, row: MethodRow, chosen: dict[str, bool] | None, *,
                  first: bool) -> None:
    """A newly enabled method's switches: the first method protects login, any other
    nothing (API.md), unless the user chose (``chosen``: the operations it names, over
    that default)."""
    default = initial_protects(rt.settings.operations, first_method=first)
    row.protects = default if chosen is None else {**default, **chosen}


async def _enabled(rt: Runtime, db: AsyncSession, actor: Actor, user: User, row: MethodRow,
                   chosen: dict[str, bool] | None) -> None:
    """Audit and tell that the method is on: one notice, which says what it protects;
    a choice made at its set-up is audited after it as a switch from "protects
    nothing", as any switch is."""
    await changed(rt, db, actor, "method.enabled", user, method=row.type,
                  after=row.protects)
    if chosen is not None:
        await audit.record(db, rt.clock, actor, "method.protection_switched", user.id,
                           method=row.type, before={op: False for op in row.protects},
                           after=row.protects, at_enrollment=True)


async def _mark_enabled(rt: Runtime, db: AsyncSession, row: MethodRow, user: User,
                        chosen: dict[str, bool] | None) -> None:
    first = await queries.count_enabled_methods(db, user.id) == 0
    row.status = MethodStatus.ENABLED
    row.enabled_at = rt.clock.now()
    _set_protects(rt, row, chosen, first=first)


async def begin_enrollment(rt: Runtime, actor: Actor, user_id: str, method_type: str,
                           pin: str | None, params: dict[str, Any], *,
                           on_behalf: bool = False,
                           protects: Mapping[str, bool] | None = None) -> EnrollmentStart:
    """Start enabling a method. The user proves the PIN; a portal enrolling on the user's
    behalf (API key of role app) has authenticated the user itself and may omit it.
    ``protects``: only for a method enabled at once (a set of codes), whose last proof is
    this one; any other method takes it with its confirmation."""
    method = registry.get(method_type)
    chosen = chosen_protects(rt, protects)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if not rt.adapter.may_enable(user, method_type):  # the operator's policy
            raise Forbidden(situation="method_not_offered")
        if pin is not None or not on_behalf:
            await check_pin(rt, db, actor, user, pin or "", method=method_type)
        existing = await queries.get_method(db, user.id, method_type)
        if existing is not None and existing.status == MethodStatus.ENABLED:
            raise MethodAlreadyEnabled("This method is already enabled. Disable it first to "
                                       "start again.")
        was_enabled = await queries.count_enabled_methods(db, user.id)
        start = await method.begin_enrollment(rt.method_context(db, actor), user, params)
        if start.enabled:
            row = await enabled_row(db, user, method_type)
            _set_protects(rt, row, chosen, first=was_enabled == 0)
            await _enabled(rt, db, actor, user, row, chosen)
        elif chosen is not None:  # nothing is written: the transaction is not committed
            raise ValidationFailed("Say what the method protects when you confirm it "
                                   "(…/enrollment/confirm).", field="protects")
        else:
            await audit.record(db, rt.clock, actor, "method.enrollment_started", user.id,
                               method=method_type)
        await db.commit()
    if start.challenge is not None:
        await challenges.deliver(rt, actor, user_id, method_type, start.challenge,
                                 Purpose.enroll(method_type).value, drop_pending=True)
    return start


# How many destinations one account may have checked in an hour (check_destination):
# far more than a person mistyping a number needs, too few to make the page a free
# number-validation service.
DESTINATION_CHECKS_PER_HOUR = 30


async def check_destination(rt: Runtime, user_id: str, method_type: str,
                            params: dict[str, Any]) -> str:
    """Whether the set-up of ``method_type`` would accept the destination ``params``
    name — the check ``begin_enrollment`` makes, before the PIN is asked: the
    destination in its stored form, or ``ValidationFailed`` saying why not. Nothing is
    sent, and nothing is read but the number itself: the answer says nothing about any
    account, this one's or another's. Counted per account (``RateLimited`` over
    ``DESTINATION_CHECKS_PER_HOUR`` in an hour); ``NotFound`` for a method whose
    destination is not typed in."""
    method = registry.get(method_type)
    if not isinstance(method, ChecksDestination):
        raise NotFound(f"The method '{method_type}' has no destination to check.")
    window, retry = hour_window(rt.clock.now())
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if await queries.rate_hit(db, f"destination-checks:{user.id}",
                                  window) > DESTINATION_CHECKS_PER_HOUR:
            await db.rollback()
            raise RateLimited("Too many destinations checked: try again later.",
                              retry_after=retry)
        await db.commit()  # counted, whatever the answer
        return method.destination(rt.method_context(db), user, params)


async def confirm_enrollment(rt: Runtime, actor: Actor, user_id: str, method_type: str,
                             code: str, protects: Mapping[str, bool] | None = None
                             ) -> MethodView:
    """Finish enabling with the code (or the passkey's answer) the set-up asked for;
    ``protects``: the operations the user chose, confirmed by that same proof."""
    method = registry.get(method_type)
    chosen = chosen_protects(rt, protects)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await queries.get_method(db, user.id, method_type)
        ctx = rt.method_context(db)
        # Refused, the page shows the enrollment as it stood: read here, not read twice.
        before = await method.describe(ctx, user, row)
        with refusals.keeping(lambda: before):
            if row is None or row.status != MethodStatus.PENDING:
                raise Conflict("There is no enrollment of this method waiting for a code: "
                               "start again with Enable.")
            # Same guards as any code check, but the proof is the enrollment's own.
            await check_code(rt, db, actor, user, row, code, Purpose.enroll(method_type))
        await method.confirm_enrollment(ctx, user, row, code)
        await _mark_enabled(rt, db, row, user, chosen)
        await _enabled(rt, db, actor, user, row, chosen)
        await db.commit()
        return await view(rt, db, user, method_type)


async def challenge(rt: Runtime, actor: Actor, user_id: str, method_type: str) -> ChallengeSent:
    """Send a fresh code to manage this method (switches, Disable), or — while it is
    pending — to finish enrolling it."""
    registry.get(method_type)

    async def find(db: AsyncSession) -> challenges.Target:
        user = await user_or_not_found(db, user_id)
        row = await queries.get_method(db, user.id, method_type)
        rows = [row] if row is not None else []
        pending = row is not None and row.status == MethodStatus.PENDING
        what = (Completing.enroll(method_type) if pending
                else Completing.manage(method_type))
        chosen = challenges.choose(
            completers(what, rows, challenges.registered()), rows, method_type,
            lambda _: MethodNotEnabled(f"The method '{method_type}' is not enabled."))
        purpose = Purpose.enroll(method_type) if pending else Purpose.manage(method_type)
        return challenges.Target(user, chosen, purpose)

    return await challenges.issue(rt, actor, find)


async def _check_keeping_view(rt: Runtime, db: AsyncSession, actor: Actor, user: User,
                              row: MethodRow, code: str, prepared: dict[bytes, bytes]
                              ) -> None:
    """A code to manage the method; refused, the error keeps the method's view as read
    here (where its codes go), so the form is drawn again without reading it twice."""
    before = await registry.get(row.type).describe(rt.method_context(db), user, row)
    with refusals.keeping(lambda: before):
        await check_code(rt, db, actor, user, row, code, Purpose.manage(row.type),
                         prepared=prepared)


async def switch(rt: Runtime, actor: Actor, user_id: str, method_type: str,
                 protects: dict[str, bool], code: str) -> MethodView:
    unknown = set(protects) - set(rt.settings.operations)
    if unknown:
        raise ValidationFailed(f"Unknown operation(s): {', '.join(sorted(unknown))}",
                               field="protects")
    if not protects:
        raise ValidationFailed("Say which operation to switch.", field="protects")
    prepared = await prepare(rt, method_type, code, user_id)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await enabled_row(db, user, method_type)
        await _check_keeping_view(rt, db, actor, user, row, code, prepared)
        before = dict(row.protects)
        row.protects = {**before, **{k: bool(v) for k, v in protects.items()}}
        await changed(rt, db, actor, "method.protection_switched", user,
                       method=method_type, before=before, after=row.protects)
        await db.commit()
        return await view(rt, db, user, method_type)


async def disable(rt: Runtime, actor: Actor, user_id: str, method_type: str, code: str
                  ) -> MethodView:
    method = registry.get(method_type)
    prepared = await prepare(rt, method_type, code, user_id)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await enabled_row(db, user, method_type)
        ensure_may_disable(rt, user, method_type)
        await _check_keeping_view(rt, db, actor, user, row, code, prepared)
        # Disabling SMS unverifies the phone, yet its owner is the one to tell.
        phone = (rt.destinations.read(row) if _verifies_phone(method_type) and user.phone_verified
                 else None)
        await method.disable(rt.method_context(db), user, row)
        await changed(rt, db, actor, "method.disabled", user, method=method_type,
                       phone=phone)
        await db.commit()
        return await view(rt, db, user, method_type)


def ensure_may_disable(rt: Runtime, user: User, method_type: str) -> None:
    """The operator's policy (the adapter) may keep a method on: asked before the code is
    checked, so a refusal spends no code."""
    if not rt.adapter.may_disable(user, method_type):
        raise MethodRequired()


async def regenerate_backup_codes(rt: Runtime, actor: Actor, user_id: str, code: str | None,
                                  *, on_behalf: bool = False) -> list[str]:
    """A new set of backup codes; every old code stops working. ``code``: a current
    backup code; a portal acting on the user's behalf (API key of role app) has
    authenticated the user itself and may omit it, as when it enrols a method."""
    method = next((m for m in registry.available() if isinstance(m, IssuesCodeSets)), None)
    if method is None:
        raise NotFound("There is no method that issues sets of codes.")
    prepared = await prepare(rt, method.type, code, user_id) if code is not None else {}
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        # Held until commit: two racing regenerations must not leave two valid sets.
        row = await enabled_row(db, user, method.type, lock=True)
        if code is not None or not on_behalf:
            await check_code(rt, db, actor, user, row, code or "", Purpose.manage(method.type),
                             prepared=prepared)
        codes = await method.issue_set(rt.method_context(db), user)
        await changed(rt, db, actor, "backup_codes.regenerated", user)
        await db.commit()
        return codes
