"""Queries of lock-out recovery and the support console: staff, recovery
requests, and the reset that ends a recovery.

Every state change of a request is one conditional UPDATE on its current status, so two
staff members (or a staff member and the cancel link) racing on one request never both
win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import (
    STAFF_APP_ID,
    BackupCode,
    Challenge,
    Guard,
    LoginFlow,
    Method,
    RecoveryRequest,
    RememberedDevice,
    Session,
    Staff,
    User,
)

OPEN_STATUSES = ("requested", "checked", "approved")

# --- staff ---------------------------------------------------------------------------


async def get_staff(db: AsyncSession, staff_id: str) -> Staff | None:
    return await db.get(Staff, staff_id, populate_existing=True)


async def get_staff_by_email(db: AsyncSession, email: str) -> Staff | None:
    return (await db.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()


async def list_staff(db: AsyncSession) -> Sequence[Staff]:
    return (await db.execute(select(Staff).order_by(Staff.created_at))).scalars().all()


async def get_staff_by_user(db: AsyncSession, user_id: str) -> Staff | None:
    """The staff member a user of the app ``staff`` stands for."""
    q = select(Staff).where(Staff.user_id == user_id).execution_options(
        populate_existing=True)
    return (await db.execute(q)).scalar_one_or_none()


async def delete_sessions_of(db: AsyncSession, user_id: str) -> None:
    """End every session of a user at once (a staff member disabled)."""
    await db.execute(delete(Session).where(Session.user_id == user_id))


# --- users, as support sees them -------------------------------------------------------


async def find_users(db: AsyncSession, text: str, limit: int = 20) -> Sequence[User]:
    """Users whose id is ``text`` or whose e-mail contains it (never a staff member's
    user: staff accounts are the operator's, through ``stepup staff``)."""
    text = text.strip().lower()
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    q = (select(User)
         .where(or_(User.id == text, User.email.like(f"%{escaped}%", escape="\\")),
                User.app_id != STAFF_APP_ID)
         .order_by(User.email).limit(limit))
    return (await db.execute(q)).scalars().all()


async def guards_of(db: AsyncSession, user_id: str) -> Sequence[Guard]:
    q = select(Guard).where(Guard.user_id == user_id).order_by(Guard.scope)
    return (await db.execute(q)).scalars().all()


# --- recovery requests -----------------------------------------------------------------


async def get_request(db: AsyncSession, request_id: str) -> RecoveryRequest | None:
    return await db.get(RecoveryRequest, request_id, populate_existing=True)


async def open_request_of(db: AsyncSession, user_id: str) -> RecoveryRequest | None:
    q = (select(RecoveryRequest)
         .where(RecoveryRequest.user_id == user_id,
                RecoveryRequest.status.in_(OPEN_STATUSES))
         .order_by(RecoveryRequest.created_at.desc()).limit(1))
    return (await db.execute(q)).scalars().first()


async def requests_of(db: AsyncSession, user_id: str, limit: int = 20
                      ) -> Sequence[RecoveryRequest]:
    q = (select(RecoveryRequest).where(RecoveryRequest.user_id == user_id)
         .order_by(RecoveryRequest.created_at.desc()).limit(limit))
    return (await db.execute(q)).scalars().all()


async def queue(db: AsyncSession, statuses: Sequence[str] = OPEN_STATUSES, limit: int = 100
                ) -> Sequence[tuple[RecoveryRequest, str]]:
    """Requests in these states, oldest first, with the e-mail of their account."""
    q = (select(RecoveryRequest, User.email)
         .join(User, User.id == RecoveryRequest.user_id)
         .where(RecoveryRequest.status.in_(statuses))
         .order_by(RecoveryRequest.created_at).limit(limit))
    return [(row, email) for row, email in (await db.execute(q)).all()]


async def move_request(db: AsyncSession, request_id: str, from_statuses: Sequence[str],
                       **values: Any) -> bool:
    """Change a request only if it is still in one of ``from_statuses``: one winner."""
    res = await db.execute(
        update(RecoveryRequest)
        .where(RecoveryRequest.id == request_id, RecoveryRequest.status.in_(from_statuses))
        .values(**values))
    return _rowcount(res) == 1


async def due_request_ids(db: AsyncSession, now: datetime, limit: int = 100) -> list[str]:
    q = (select(RecoveryRequest.id)
         .where(RecoveryRequest.status == "approved", RecoveryRequest.effective_at <= now)
         .order_by(RecoveryRequest.effective_at).limit(limit))
    return list((await db.execute(q)).scalars().all())


async def reset_second_factors(db: AsyncSession, user_id: str) -> dict[str, int]:
    """Every method, backup code, pending code, session, login flow and remembered device
    of the user: gone. Returns how many of each, for the audit log."""
    counts: dict[str, int] = {}
    methods = await db.execute(
        select(func.count()).select_from(Method).where(Method.user_id == user_id))
    counts["methods"] = int(methods.scalar_one())
    for name, model in (("methods_deleted", Method), ("backup_codes", BackupCode),
                        ("challenges", Challenge), ("sessions", Session),
                        ("login_flows", LoginFlow), ("devices", RememberedDevice)):
        res = await db.execute(delete(model).where(model.user_id == user_id))
        counts[name] = _rowcount(res)
    del counts["methods_deleted"]
    await db.execute(update(User).where(User.id == user_id).values(must_enroll=True))
    return counts


async def clear_must_enroll(db: AsyncSession, user_id: str) -> None:
    await db.execute(update(User).where(User.id == user_id, User.must_enroll.is_(True))
                     .values(must_enroll=False))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


async def lock_user(db: AsyncSession, user_id: str) -> User | None:
    """The user's row, locked for this transaction (PostgreSQL; SQLite transactions are
    already serialised by BEGIN IMMEDIATE): one open recovery request per account."""
    q = select(User).where(User.id == user_id).with_for_update()
    return (await db.execute(q)).scalar_one_or_none()
