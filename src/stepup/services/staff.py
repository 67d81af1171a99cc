"""Support staff: their accounts, and logging in to the support console.

Staff are not users: their own table, their own sessions, their own cookie. Every staff
member has an authenticator app (created with the account by ``stepup staff create``),
and a staff session is good for nothing but the second-factor page until a TOTP code
passed. A time step, once accepted, is refused forever after (one conditional UPDATE of
``totp_last_step``). Wrong passwords and wrong codes are counted per staff member (and
per typed e-mail) in the shared rate counters, and lock the login for a while.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.codes import check_password, normalise_numeric_code
from stepup.domain.errors import (
    Conflict,
    Forbidden,
    InvalidCode,
    InvalidCredentials,
    NotAuthenticated,
    NotFound,
    RateLimited,
    SecondFactorRequired,
    ValidationFailed,
)
from stepup.domain.hashing import new_id, new_token
from stepup.methods import totp
from stepup.services import audit
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store import queries
from stepup.store import recovery as store
from stepup.store.models import Staff, StaffSession

ROLES = ("support", "supervisor")


def actor_name(staff: Staff) -> str:
    return f"staff:{staff.id}"


def as_actor(base: Actor, staff: Staff) -> Actor:
    return Actor(ip=base.ip, user_agent=base.user_agent, name=actor_name(staff))


def _aad(staff_id: str) -> bytes:
    return f"staff-totp:{staff_id}".encode()


@dataclass
class NewStaff:
    staff: Staff
    secret: str
    otpauth_uri: str


async def create(rt: Runtime, actor: Actor, *, email: str, name: str, role: str,
                 password: str) -> NewStaff:
    """A staff member with a fresh authenticator-app secret (shown once, by the CLI)."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    email = normalise_email(email)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Give the staff member's name (at most 120 characters).",
                               field="name")
    check_password(password, email=email, min_length=rt.settings.password_min_length,
                   max_length=rt.settings.password_max_length,
                   context=rt.settings.password_context)
    secret = totp.new_secret()
    staff = Staff(id=new_id(), email=email, name=name, role=role,
                  password_hash=await run_cpu(rt.hasher.hash_password, password),
                  totp_last_step=None, created_at=rt.clock.now(), disabled_at=None)
    staff.totp_kid, staff.totp_ct = rt.keyring.encrypt(secret.encode(), _aad(staff.id))
    async with rt.db() as db:
        db.add(staff)
        try:
            await db.flush()
        except IntegrityError as exc:
            raise Conflict("A staff member with this e-mail address already exists.",
                           field="email") from exc
        await audit.record(db, rt.clock, actor, "staff.created", None, staff=staff.id,
                           role=role)
        await db.commit()
    uri = totp.provisioning_uri(secret, f"{rt.settings.issuer} support", email)
    return NewStaff(staff=staff, secret=secret, otpauth_uri=uri)


async def list_all(rt: Runtime) -> Sequence[Staff]:
    async with rt.db() as db:
        return await store.list_staff(db)


async def disable(rt: Runtime, actor: Actor, email: str) -> Staff:
    """Disable a staff member and end every session they have, at once."""
    async with rt.db() as db:
        staff = await store.get_staff_by_email(db, normalise_email(email))
        if staff is None:
            raise NotFound("No staff member with this e-mail address.")
        if staff.disabled_at is None:
            staff.disabled_at = rt.clock.now()
            await store.delete_staff_sessions(db, staff.id)
            await audit.record(db, rt.clock, actor, "staff.disabled", None, staff=staff.id)
            await db.commit()
        return staff


# --- guessing --------------------------------------------------------------------------


def _window(rt: Runtime) -> tuple[datetime, datetime]:
    seconds = rt.settings.staff_lock_seconds
    now = rt.clock.now()
    start = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=now.tzinfo)
    return start, start + timedelta(seconds=seconds)


def _key(kind: str, value: str) -> str:
    return f"staff-{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]


async def _ensure_open(rt: Runtime, db: AsyncSession, key: str) -> None:
    start, end = _window(rt)
    if await queries.rate_value(db, key, start) >= rt.settings.staff_failures_before_lock:
        retry = max(1, int((end - rt.clock.now()).total_seconds()))
        raise RateLimited("Too many failed attempts: wait a few minutes and try again.",
                          retry_after=retry)


async def _failed(rt: Runtime, db: AsyncSession, key: str) -> None:
    start, _ = _window(rt)
    await queries.rate_hit(db, key, start)


async def _reserve(rt: Runtime, db: AsyncSession, key: str) -> datetime:
    """Count a password attempt as a failure before comparing (the caller commits), or
    refuse it past the limit (the caller rolls back: a refused attempt counts nothing).
    Answers the window counted in, to give the count back if the password is right."""
    start, end = _window(rt)
    if await queries.rate_hit(db, key, start) > rt.settings.staff_failures_before_lock:
        retry = max(1, int((end - rt.clock.now()).total_seconds()))
        raise RateLimited("Too many failed attempts: wait a few minutes and try again.",
                          retry_after=retry)
    return start


# --- login -----------------------------------------------------------------------------


async def password_step(rt: Runtime, actor: Actor, email: str, password: str) -> str:
    """Check the password; returns the token of a session that still needs its second
    factor. An unknown address answers like a wrong password, after the same work.

    No transaction is open while argon2 runs: the member is read read-only, the attempt
    is counted in a short write (refused there past the limit, so racing guesses cannot
    all pass), then the outcome is written."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        email = email.strip().lower()
    key = _key("email", email)
    async with rt.read() as db:
        staff = await store.get_staff_by_email(db, email)
    async with rt.db() as db:
        window = await _reserve(rt, db, key)
        await db.commit()
    ok = await run_cpu(rt.hasher.verify_password,
                       staff.password_hash if staff else None, password)
    async with rt.db() as db:
        current = await store.get_staff_by_email(db, email) if staff and ok else None
        if current is None or current.disabled_at is not None:
            await audit.record(db, rt.clock, actor, "staff.login_failed", None,
                               staff=staff.id if staff else None, step="password")
            await db.commit()
            raise InvalidCredentials()
        staff = current
        await queries.rate_hit(db, key, window, -1)  # a right password: no failure
        try:
            await _ensure_open(rt, db, _key("staff", staff.id))
        except RateLimited:
            await db.commit()
            raise
        token = new_token()
        now = rt.clock.now()
        db.add(StaffSession(id=new_id(), token_hash=rt.hasher.token_hash(token),
                            staff_id=staff.id, second_factor_at=None, created_at=now,
                            last_seen_at=now,
                            expires_at=now + timedelta(hours=rt.settings.staff_session_hours)))
        await audit.record(db, rt.clock, as_actor(actor, staff), "staff.password_passed",
                           None, staff=staff.id)
        await db.commit()
        return token


@dataclass
class StaffAuth:
    staff: Staff
    session: StaffSession

    @property
    def complete(self) -> bool:
        return self.session.second_factor_at is not None


async def resolve(rt: Runtime, token: str | None, *, complete: bool = True) -> StaffAuth:
    """The staff member behind a session token. With ``complete``, the second factor must
    have passed (``SecondFactorRequired`` otherwise)."""
    if not token:
        raise NotAuthenticated()
    async with rt.db() as db:
        row = await store.get_staff_session_by_hash(db, rt.hasher.token_hash(token))
        if row is None:
            raise NotAuthenticated()
        now = rt.clock.now()
        idle = timedelta(minutes=rt.settings.staff_session_idle_minutes)
        staff = await store.get_staff(db, row.staff_id)
        if (row.expires_at <= now or row.last_seen_at + idle <= now or staff is None
                or staff.disabled_at is not None):
            await store.delete_staff_session(db, row.id)
            await db.commit()
            raise NotAuthenticated("Your session has expired: log in again.")
        if complete and row.second_factor_at is None:
            raise SecondFactorRequired("Enter the code from your authenticator app first.")
        if now - row.last_seen_at >= timedelta(seconds=60):
            await store.touch_staff_session(db, row.id, now)
            await db.commit()
        return StaffAuth(staff=staff, session=row)


async def second_factor(rt: Runtime, actor: Actor, token: str, code: str) -> str:
    """Complete a staff login with a code from the staff member's authenticator app;
    returns the token of the new, complete session."""
    auth = await resolve(rt, token, complete=False)
    staff = auth.staff
    who = as_actor(actor, staff)
    key = _key("staff", staff.id)
    async with rt.db() as db:
        await _ensure_open(rt, db, key)
        if staff.totp_kid is None or staff.totp_ct is None:
            await audit.record(db, rt.clock, who, "staff.login_failed", None, staff=staff.id,
                               step="second_factor", reason="no_second_factor")
            await db.commit()
            raise Forbidden("This staff account has no authenticator app: ask an "
                            "administrator to create it again.")
        secret = rt.keyring.decrypt(staff.totp_kid, staff.totp_ct, _aad(staff.id)).decode()
        typed = normalise_numeric_code(code, totp.DIGITS)
        step = (totp.match_step(secret, typed, totp.time_step(rt.clock.now()),
                                rt.settings.totp_window) if typed else None)
        if step is None or not await store.advance_staff_step(db, staff.id, step):
            await _failed(rt, db, key)
            await audit.record(db, rt.clock, who, "staff.login_failed", None, staff=staff.id,
                               step="second_factor", reason="invalid_code")
            await db.commit()
            raise InvalidCode()
        # The half-done session ends and a new one (new id, new token) begins: a session
        # id seen before the second factor is worth nothing after it.
        now = rt.clock.now()
        if not await store.pass_staff_second_factor(db, auth.session.id, now):
            raise NotAuthenticated("This login attempt is no longer valid: log in again.")
        await store.delete_staff_session(db, auth.session.id)
        new = new_token()
        db.add(StaffSession(id=new_id(), token_hash=rt.hasher.token_hash(new),
                            staff_id=staff.id, second_factor_at=now, created_at=now,
                            last_seen_at=now, expires_at=auth.session.expires_at))
        await queries.rate_reset(db, key)
        await queries.rate_reset(db, _key("email", staff.email))
        await audit.record(db, rt.clock, who, "staff.login_succeeded", None, staff=staff.id)
        await db.commit()
    return new


async def logout(rt: Runtime, session_id: str) -> None:
    async with rt.db() as db:
        await store.delete_staff_session(db, session_id)
        await db.commit()
