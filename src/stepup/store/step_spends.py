"""A TOTP step whose spend rides in its verification's audit event (PostgreSQL).

A portal's verify of a right code writes the step it spends (single use), the event
that audits it and the API key's count. On PostgreSQL, when nothing else is written
and nothing was written before, the three go in one call that is a transaction of its
own (store/audit.py, ``spend_and_record``): the key's read, then that call, two round
trips where BEGIN, the read, the step's UPDATE, the event's statement and COMMIT took
five.

The caller that knows those conditions hold lets the spend ride (``allow``: no end
user's context to audit as a login, no guard to clear, no last use of the key to
record — every write of a call commits together); the method
then hands its step over (``spend_step``) instead of sending the UPDATE, and goes on as
if it had won it; the audit event takes it (``take``). Whatever keeps the call from
doing all of it (the step spent by a racing verify, a guard locked or the chain moved
since the read, the key past its rate, or a spend nobody took) writes nothing and
raises ``RideRefused``: the caller then does the check again the ordinary way, which
answers each of those cases as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from stepup.domain.policy import ACCOUNT_SCOPE, method_scope
from stepup.store.models import Method
from stepup.store.queries import advance_counter

_KEY = "stepup_step_spend"


class RideRefused(Exception):
    """The spend could not ride (see the module): nothing was written."""


@dataclass(frozen=True)
class StepSpend:
    """``advance_counter``'s arguments, for the audit event's call."""

    method_id: str
    step: int
    now: datetime
    #: The guards of the account and the method, checked again by the call.
    scopes: tuple[str, str]


def allow(db: AsyncSession) -> None:
    """A step spent in ``db``'s transaction may ride in its audit event."""
    db.sync_session.info[_KEY] = None


def end(db: AsyncSession) -> StepSpend | None:
    """Stop letting spends ride in ``db``; the spend handed over and not taken, if any."""
    spend: StepSpend | None = db.sync_session.info.pop(_KEY, None)
    return spend


def pending(db: AsyncSession) -> bool:
    """Whether a step was handed over and waits for the audit event."""
    return db.sync_session.info.get(_KEY) is not None


def take(db: AsyncSession) -> StepSpend | None:
    """The step handed over, for the audit event to spend (once)."""
    info = db.sync_session.info
    spend: StepSpend | None = info.get(_KEY)
    if spend is not None:
        del info[_KEY]
    return spend


async def spend_step(db: AsyncSession, row: Method, step: int, now: datetime) -> bool:
    """``advance_counter``, or, where the spend may ride, handed over to the audit event:
    ``row`` then holds the step as if the UPDATE had won it (if it does not, the event
    raises ``RideRefused``, and ``row`` is read again)."""
    info = db.sync_session.info
    if _KEY not in info or info[_KEY] is not None:
        return await advance_counter(db, row, step, now)
    info[_KEY] = StepSpend(row.id, step, now, (ACCOUNT_SCOPE, method_scope(row.type)))
    set_committed_value(row, "last_step", step)
    set_committed_value(row, "last_used_at", now)
    return True
