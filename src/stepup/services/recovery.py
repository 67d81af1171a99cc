"""Lock-out recovery (seed 004, option 2): a request to reset two-factor authentication.

The path is deliberately slow and loud, because this is where accounts are lost to
social engineering:

1. the user, with the password proven (at the second-factor step of login), or their
   portal, after its own identity check, files a request; every verified contact is
   told at once, with a link that cancels it;
2. support records the identity checks it performed (a configured checklist);
3. a supervisor *other than* the staff member who checked approves it (four eyes);
4. the reset takes effect only after ``recovery_delay_hours``, while the user and every
   contact can still cancel; then every method, backup code, session and remembered
   device is gone and the next login must enrol a method first.

Every step is audited and notified in the transaction that makes it, and every change of
status is one conditional UPDATE on the status it starts from. Filing a request (from
StepUp's pages or a portal) and the cancel link live in ``services/recovery_requests.py``;
this module takes a request from there to its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain import destinations
from stepup.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    StateChanged,
    ValidationFailed,
)
from stepup.services import audit, notifications

# Filing moved to recovery_requests; callers that name these through this module still can.
from stepup.services.recovery_requests import cancel_token as cancel_token
from stepup.services.recovery_requests import cancel_url, request_id_from
from stepup.services.recovery_requests import file_request as file_request
from stepup.services.recovery_requests import (
    open_request_for_login as open_request_for_login,
)
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.store import apps as app_store
from stepup.store import audit as audit_store
from stepup.store import codes, queries
from stepup.store import recovery as store
from stepup.store.models import (
    App,
    AuditEvent,
    Guard,
    RecoveryRequest,
    Staff,
    User,
)
from stepup.store.models import Method as MethodRow

log = logging.getLogger("stepup.recovery")

SYSTEM = Actor(name="system")


# --- cancelling ----------------------------------------------------------------------------


@dataclass
class CancelView:
    request: RecoveryRequest
    email: str  # masked

    @property
    def open(self) -> bool:
        return self.request.status in store.OPEN_STATUSES


async def look_up_cancel(rt: Runtime, token: str) -> CancelView:
    """What a cancel link points at, or ``NotFound`` for a forged or unknown one."""
    request_id = request_id_from(rt, token)
    if request_id is None:
        raise NotFound("This link is not valid.")
    async with rt.db() as db:
        row = await store.get_request(db, request_id)
        user = await queries.get_user(db, row.user_id) if row else None
        if row is None or user is None:
            raise NotFound("This link is not valid.")
        return CancelView(request=row, email=destinations.mask_email(user.email))


async def cancel_by_token(rt: Runtime, actor: Actor, token: str) -> RecoveryRequest:
    """Cancel the request this link names. It works once: a cancelled (or finished)
    request is no longer open, and the link answers ``Conflict`` after that."""
    request_id = request_id_from(rt, token)
    if request_id is None:
        raise NotFound("This link is not valid.")
    async with rt.db() as db:
        row = await store.get_request(db, request_id)
        if row is None:
            raise NotFound("This link is not valid.")
        now = rt.clock.now()
        if not await store.move_request(db, row.id, store.OPEN_STATUSES, status="cancelled",
                                        cancelled_at=now, cancelled_by="link"):
            raise Conflict("This recovery request is no longer open: nothing was changed.")
        user = await queries.get_user(db, row.user_id)
        assert user is not None
        await audit.record(db, rt.clock, Actor(ip=actor.ip, user_agent=actor.user_agent,
                                               name="cancel-link"),
                           "recovery.cancelled", user.id, request=row.id, was=row.status)
        await notifications.notify(rt, db, user, "recovery.cancelled", actor=actor)
        await db.commit()
        row.status, row.cancelled_at, row.cancelled_by = "cancelled", now, "link"
        return row


# --- support: checks and decisions -------------------------------------------------------


async def _request_and_user(db: AsyncSession, request_id: str
                            ) -> tuple[RecoveryRequest, User]:
    row = await store.get_request(db, request_id)
    user = await queries.get_user(db, row.user_id) if row else None
    if row is None or user is None:
        raise NotFound("No such recovery request.")
    return row, user


async def record_checks(rt: Runtime, actor: Actor, staff: Staff, request_id: str,
                        done: Sequence[str], note: str = "") -> RecoveryRequest:
    """Support records the identity checks it performed; every item of the configured
    checklist must have been done before the request can go to a supervisor."""
    checklist = list(rt.settings.recovery_checklist)
    unknown = set(done) - set(checklist)
    if unknown:
        raise ValidationFailed("Unknown check.", field="checks")
    missing = [c for c in checklist if c not in done]
    if missing:
        raise ValidationFailed("Every identity check must be done before the request can "
                               "be approved. If a check failed, reject the request.",
                               field="checks", extra={"missing": missing},
                               situation="recovery_checks")
    async with rt.db() as db:
        row, user = await _request_and_user(db, request_id)
        now = rt.clock.now()
        checks = {"done": checklist, "note": note.strip()[:2000] or None}
        if not await store.move_request(db, row.id, ("requested",), status="checked",
                                        checks=checks, checked_by=staff.id, checked_at=now):
            raise Conflict("This request is not waiting for identity checks.")
        await audit.record(db, rt.clock, actor, "recovery.checked", user.id, request=row.id,
                           checks=checklist)
        await db.commit()
    return await get(rt, request_id)


async def approve(rt: Runtime, actor: Actor, staff: Staff, request_id: str,
                  note: str = "") -> RecoveryRequest:
    """A supervisor who did not perform the checks approves; the reset waits
    ``recovery_delay_hours`` before it takes effect."""
    if staff.role != "supervisor":
        raise Forbidden(situation="supervisor_only")
    async with rt.db() as db:
        row, user = await _request_and_user(db, request_id)
        if row.status != "checked":
            raise Conflict("Only a request whose identity checks are recorded can be "
                           "approved.")
        if row.checked_by == staff.id:
            await audit.record(db, rt.clock, actor, "recovery.self_approval_refused",
                               user.id, request=row.id)
            await db.commit()
            raise Forbidden("You recorded the identity checks of this request: another "
                            "supervisor must approve it (four eyes).",
                            situation="recovery_supervisor")
        now = rt.clock.now()
        effective_at = now + timedelta(hours=rt.settings.recovery_delay_hours)
        if not await store.move_request(db, row.id, ("checked",), status="approved",
                                        decided_by=staff.id, decided_at=now,
                                        decision_note=note.strip()[:2000] or None,
                                        effective_at=effective_at):
            raise StateChanged("This request changed meanwhile: reload it.")
        await audit.record(db, rt.clock, actor, "recovery.approved", user.id, request=row.id,
                           checked_by=row.checked_by, effective_at=effective_at.isoformat())
        await notifications.notify(rt, db, user, "recovery.approved", actor=actor,
                                   effective_at=effective_at.isoformat(),
                                   cancel_url=cancel_url(rt, row.id))
        await db.commit()
    return await get(rt, request_id)


async def reject(rt: Runtime, actor: Actor, staff: Staff, request_id: str,
                 note: str = "") -> RecoveryRequest:
    """Support or a supervisor refuses (or stops) a request that is still open."""
    note = note.strip()
    if not note:
        raise ValidationFailed("Say why the request is rejected.", field="note",
                               situation="recovery_checks")
    async with rt.db() as db:
        row, user = await _request_and_user(db, request_id)
        if not await store.move_request(db, row.id, store.OPEN_STATUSES, status="rejected",
                                        decided_by=staff.id, decided_at=rt.clock.now(),
                                        decision_note=note[:2000]):
            raise Conflict("This request is no longer open.")
        await audit.record(db, rt.clock, actor, "recovery.rejected", user.id, request=row.id,
                           was=row.status)
        await notifications.notify(rt, db, user, "recovery.rejected", actor=actor)
        await db.commit()
    return await get(rt, request_id)


async def get(rt: Runtime, request_id: str) -> RecoveryRequest:
    async with rt.db() as db:
        row, _ = await _request_and_user(db, request_id)
        return row


async def queue(rt: Runtime) -> Sequence[tuple[RecoveryRequest, str]]:
    async with rt.db() as db:
        return await store.queue(db)


# --- the waiting period ends ---------------------------------------------------------------


async def complete_due(rt: Runtime) -> int:
    """Reset every account whose approved request's waiting period is over."""
    done = 0
    async with rt.db() as db:
        due = await store.due_request_ids(db, rt.clock.now())
    for request_id in due:
        async with rt.db() as db:
            now = rt.clock.now()
            # Cancelled since it was listed? Then this UPDATE finds nothing to move.
            if not await store.move_request(db, request_id, ("approved",),
                                            status="completed", completed_at=now):
                continue
            row, user = await _request_and_user(db, request_id)
            # Told first: the recipients include contacts that the reset removes (the
            # phone of the SMS method), and they are the ones who most need to hear.
            await notifications.notify(rt, db, user, "recovery.completed", actor=SYSTEM)
            counts = await store.reset_second_factors(db, user.id)
            await audit.record(db, rt.clock, SYSTEM, "recovery.completed", user.id,
                               request=request_id, approved_by=row.decided_by,
                               checked_by=row.checked_by, removed=counts)
            await db.commit()
            done += 1
    return done


async def run_forever(rt: Runtime) -> None:
    """The app's background task: finish due resets every ``recovery_poll_seconds``."""
    while True:
        try:
            finished = await complete_due(rt)
            if finished:
                log.info("recovery: %d account(s) reset after the waiting period", finished)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing database must not kill the loop; retried next time
            log.exception("recovery: finishing due requests failed")
        await asyncio.sleep(rt.settings.recovery_poll_seconds)


# --- after a reset: enrol first ------------------------------------------------------------


async def needs_enrolment(rt: Runtime, user_id: str) -> bool:
    """True after a reset until the user enables a method (the flag is then cleared)."""
    async with rt.db() as db:
        user = await queries.get_user(db, user_id)
        if user is None or not user.must_enroll:
            return False
        if await queries.count_enabled_methods(db, user_id) == 0:
            return True
        await store.clear_must_enroll(db, user_id)
        await db.commit()
        return False


# --- what the support console shows about an account -------------------------------------


@dataclass
class MethodLine:
    type: str
    status: str
    protects: dict[str, Any]
    destination: str | None
    created_at: Any
    last_used_at: Any


@dataclass
class Dossier:
    user: User
    methods: list[MethodLine]
    backup_codes_left: int
    locks: list[Guard]
    events: Sequence[AuditEvent]
    requests: Sequence[RecoveryRequest]
    staff_names: dict[str, str] = field(default_factory=dict)
    app: App | None = None  # the portal the user belongs to


def _line(rt: Runtime, row: MethodRow) -> MethodLine:
    # Never a secret: no seed, no code; destinations masked as on the user's own pages.
    return MethodLine(type=row.type, status=row.status, protects=dict(row.protects or {}),
                      destination=rt.destinations.masked(row.type, row),
                      created_at=row.enabled_at or row.created_at,
                      last_used_at=row.last_used_at)


async def dossier(rt: Runtime, user_id: str) -> Dossier:
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id, staff=False)
        now = rt.clock.now()
        locks = [g for g in await store.guards_of(db, user.id)
                 if g.locked_until is not None and g.locked_until > now]
        staff = {s.id: s.name for s in await store.list_staff(db)}
        return Dossier(user=user,
                       methods=[_line(rt, m) for m in await queries.list_methods(db, user.id)],
                       backup_codes_left=await codes.count_unused_backup_codes(db, user.id),
                       locks=locks,
                       events=await audit_store.search(db, user_id=user.id, limit=30),
                       requests=await store.requests_of(db, user.id),
                       staff_names=staff, app=await app_store.get_app(db, user.app_id))


async def find_users(rt: Runtime, text: str) -> Sequence[User]:
    if not text.strip():
        return []
    async with rt.db() as db:
        return await store.find_users(db, text)
