"""Headless verification: a portal that keeps its own login page asks StepUp to send and
check codes (like privacyIDEA's /validate/check or Twilio Verify), with every guarantee
of StepUp's own pages — single use, replay refusal, locks, caps and audit.

``purpose`` is ``login`` or an operation id. For an operation the check is the
operation's confirmation (it signs the receipt); for login it is a plain check against
any enabled method of the user: in headless mode the portal owns its login policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stepup.domain.errors import Conflict, MethodNotEnabled, NotFound, ValidationFailed
from stepup.domain.policy import LOGIN, Purpose
from stepup.methods import registry
from stepup.methods.base import ChallengeSent
from stepup.services import audit, challenges, operations
from stepup.services.runtime import Actor, Runtime
from stepup.services.verification import check_code
from stepup.store import queries


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


async def challenge(rt: Runtime, actor: Actor, user_id: str, method_type: str, purpose: str
                    ) -> ChallengeSent:
    if _purpose_kind(purpose) == "operation":
        return await operations.challenge(rt, actor, user_id, purpose, method_type)
    method = registry.get(method_type)
    async with rt.db() as db:
        user = await queries.get_user(db, user_id)
        if user is None:
            raise NotFound("No such user.")
        row = await queries.get_method(db, user.id, method_type)
        if row is None or row.status != "enabled":
            raise MethodNotEnabled(f"The method '{method_type}' is not enabled for this user.")
        sent = await method.challenge(rt.method_context(db, actor), user, row, Purpose.login())
        if sent is None:
            raise Conflict("This method does not send codes: the user reads the code from it.")
        await db.commit()
    return await challenges.deliver(rt, actor, user_id, method_type, sent, LOGIN)


async def verify(rt: Runtime, actor: Actor, user_id: str, method_type: str, code: str,
                 purpose: str) -> Verification:
    if _purpose_kind(purpose) == "operation":
        view = await operations.confirm(rt, actor, user_id, purpose, method_type, code)
        return Verification(True, method_type, view.confirmed_at, receipt=view.receipt)
    registry.get(method_type)
    async with rt.db() as db:
        user, row = await queries.get_user_and_method(db, user_id, method_type)
        if user is None:
            raise NotFound("No such user.")
        if row is None or row.status != "enabled":
            raise MethodNotEnabled(f"The method '{method_type}' is not enabled for this user.")
        verified = await check_code(rt, db, actor, user, row, code, Purpose.login())
        now = rt.clock.now()
        await audit.record(db, rt.clock, actor, "code.verified", user.id, method=method_type,
                           purpose=LOGIN)
        await db.commit()
        return Verification(True, method_type, now,
                            backup_codes_remaining=verified.notes.get("remaining"))
