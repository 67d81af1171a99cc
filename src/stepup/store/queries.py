"""The queries the services and methods use. Nothing above the store writes SQL.

Every single-use guarantee is one conditional UPDATE here, so two racing requests
(threads, workers or hosts) can never both win: the database decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.models import (
    AuditEvent,
    BackupCode,
    Guard,
    LoginFlow,
    Method,
    RateCounter,
    Session,
    User,
)

# --- users ---------------------------------------------------------------------------


async def get_user(db: AsyncSession, user_id: str) -> User | None:
    return await db.get(User, user_id)


async def get_user_and_method(db: AsyncSession, user_id: str, method_type: str
                              ) -> tuple[User | None, Method | None]:
    """The user and their method of this type, in one query."""
    q = (select(User, Method).outerjoin(Method, (Method.user_id == User.id)
                                        & (Method.type == method_type))
         .where(User.id == user_id))
    row = (await db.execute(q)).first()
    return (None, None) if row is None else (row[0], row[1])


async def get_user_by_email(db: AsyncSession, email: str) -> User | None:
    return (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()


# --- sessions and login flows --------------------------------------------------------


async def get_session_by_hash(db: AsyncSession, token_hash: bytes) -> Session | None:
    q = select(Session).where(Session.token_hash == token_hash)
    return (await db.execute(q)).scalar_one_or_none()


async def delete_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(Session).where(Session.id == session_id))


async def touch_session(db: AsyncSession, session_id: str, now: datetime) -> None:
    await db.execute(update(Session).where(Session.id == session_id).values(last_seen_at=now))


async def get_login_flow_by_hash(db: AsyncSession, token_hash: bytes) -> LoginFlow | None:
    q = select(LoginFlow).where(LoginFlow.token_hash == token_hash)
    return (await db.execute(q)).scalar_one_or_none()


async def consume_login_flow(db: AsyncSession, flow_id: str, now: datetime) -> bool:
    res = await db.execute(
        update(LoginFlow)
        .where(LoginFlow.id == flow_id, LoginFlow.used_at.is_(None))
        .values(used_at=now)
    )
    return _rowcount(res) == 1


# --- methods -------------------------------------------------------------------------


async def get_method(db: AsyncSession, user_id: str, method_type: str) -> Method | None:
    q = select(Method).where(Method.user_id == user_id, Method.type == method_type)
    return (await db.execute(q)).scalar_one_or_none()


async def list_methods(db: AsyncSession, user_id: str) -> Sequence[Method]:
    q = select(Method).where(Method.user_id == user_id).order_by(Method.created_at)
    return (await db.execute(q)).scalars().all()


async def count_enabled_methods(db: AsyncSession, user_id: str) -> int:
    q = select(func.count()).select_from(Method).where(
        Method.user_id == user_id, Method.status == "enabled"
    )
    return int((await db.execute(q)).scalar_one())


async def delete_method(db: AsyncSession, method_id: str) -> None:
    await db.execute(delete(Method).where(Method.id == method_id))


async def advance_totp_step(db: AsyncSession, method_id: str, step: int, now: datetime) -> bool:
    """Accept ``step`` only if no step at or after it was accepted before: one winner."""
    res = await db.execute(
        update(Method)
        .where(
            Method.id == method_id,
            (Method.last_step.is_(None)) | (Method.last_step < step),
        )
        .values(last_step=step, last_used_at=now)
    )
    return _rowcount(res) == 1


# --- backup codes --------------------------------------------------------------------


async def unused_backup_codes(db: AsyncSession, user_id: str) -> Sequence[BackupCode]:
    q = select(BackupCode).where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
    return (await db.execute(q)).scalars().all()


async def count_unused_backup_codes(db: AsyncSession, user_id: str) -> int:
    q = select(func.count()).select_from(BackupCode).where(
        BackupCode.user_id == user_id, BackupCode.used_at.is_(None)
    )
    return int((await db.execute(q)).scalar_one())


async def consume_backup_code(db: AsyncSession, code_id: str, now: datetime) -> bool:
    res = await db.execute(
        update(BackupCode)
        .where(BackupCode.id == code_id, BackupCode.used_at.is_(None))
        .values(used_at=now)
    )
    return _rowcount(res) == 1


async def delete_backup_codes(db: AsyncSession, user_id: str) -> None:
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))


# --- guards (consecutive failures and locks) -----------------------------------------


async def get_guard_states(db: AsyncSession, user_id: str, scopes: Sequence[str]
                           ) -> dict[str, tuple[int, int, datetime | None]]:
    """(failures, level, locked_until) of the user's guards in ``scopes`` that exist."""
    q = select(Guard.scope, Guard.failures, Guard.level, Guard.locked_until).where(
        Guard.user_id == user_id, Guard.scope.in_(scopes))
    return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in (await db.execute(q)).all()}


async def add_guard_failure(db: AsyncSession, user_id: str, scope: str) -> tuple[int, int]:
    """Count one more consecutive failure atomically; returns (failures, level)."""
    ins = _insert(db, Guard).values(user_id=user_id, scope=scope, failures=1, level=0)
    stmt = ins.on_conflict_do_update(
        index_elements=[Guard.user_id, Guard.scope],
        set_={"failures": Guard.failures + 1},
    ).returning(Guard.failures, Guard.level)
    row = (await db.execute(stmt)).one()
    return int(row[0]), int(row[1])


async def lock_guard(db: AsyncSession, user_id: str, scope: str, until: datetime,
                     next_level: int) -> None:
    await db.execute(
        update(Guard)
        .where(Guard.user_id == user_id, Guard.scope == scope)
        .values(locked_until=until, failures=0, level=next_level)
    )


async def clear_guard(db: AsyncSession, user_id: str, scope: str, *, keep_level: bool = False
                      ) -> None:
    values: dict[str, Any] = {"failures": 0, "locked_until": None}
    if not keep_level:
        values["level"] = 0
    await db.execute(
        update(Guard).where(Guard.user_id == user_id, Guard.scope == scope).values(**values)
    )


# --- rate counters -------------------------------------------------------------------


async def rate_hit(db: AsyncSession, key: str, window_start: datetime, amount: int = 1) -> int:
    """Add to a fixed-window counter and return its new value (atomic upsert)."""
    ins = _insert(db, RateCounter).values(key=key, window_start=window_start, count=amount)
    stmt = ins.on_conflict_do_update(
        index_elements=[RateCounter.key, RateCounter.window_start],
        set_={"count": RateCounter.count + amount},
    ).returning(RateCounter.count)
    return int((await db.execute(stmt)).scalar_one())


async def rate_value(db: AsyncSession, key: str, window_start: datetime) -> int:
    q = select(RateCounter.count).where(
        RateCounter.key == key, RateCounter.window_start == window_start
    )
    return int((await db.execute(q)).scalar_one_or_none() or 0)


async def rate_reset(db: AsyncSession, key: str) -> None:
    await db.execute(delete(RateCounter).where(RateCounter.key == key))


async def prune_rate_counters(db: AsyncSession, before: datetime) -> None:
    await db.execute(delete(RateCounter).where(RateCounter.window_start < before))


# --- audit ---------------------------------------------------------------------------


async def list_audit_events(db: AsyncSession, user_id: str, limit: int = 50
                            ) -> Sequence[AuditEvent]:
    q = (select(AuditEvent).where(AuditEvent.user_id == user_id)
         .order_by(AuditEvent.id.desc()).limit(limit))
    return (await db.execute(q)).scalars().all()


# --- helpers -------------------------------------------------------------------------


def _insert(db: AsyncSession, model: Any) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))
