"""Support staff: their accounts, and logging in to the support console.

Each staff member is backed by a user of the built-in, hidden app ``staff``
(``Staff.user_id``): the password, the methods (the authenticator app ``stepup staff
create`` sets up, passkeys), the locks and the sessions are that user's. A console login
is the login flow everyone goes through (services/login.py): the same password
throttles, the same method verification and guards, the same single use of a code, the
same audit events — with a second factor always required. The session it starts opens
the console alone (``sessions.resolve`` with the app ``staff``), and lasts the staff
lifetimes (``staff_session_hours``, ``staff_session_idle_minutes``). Users are unique
per app and e-mail, so a staff address never logs in to StepUp's pages or an app, and
no app's API key sees a staff member's user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.codes import check_password
from stepup.domain.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.domain.policy import MethodStatus, initial_protects
from stepup.methods import registry
from stepup.methods.base import ChallengeSent
from stepup.services import audit, login, sessions
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store import apps as app_store
from stepup.store import queries
from stepup.store import recovery as store
from stepup.store.models import STAFF_APP_ID, App, Session, Staff, User

ROLES = ("support", "supervisor")
# What ``stepup staff create`` sets up with the account: an authenticator app, whose
# QR code the CLI shows once.
FIRST_METHOD = "totp"


def actor_name(staff: Staff) -> str:
    return f"staff:{staff.id}"


def as_actor(base: Actor, staff: Staff) -> Actor:
    return Actor(ip=base.ip, user_agent=base.user_agent, name=actor_name(staff))


def login_actor(base: Actor) -> Actor:
    """Who logs in at the console: a staff member, not yet known (the events name the
    staff member's user)."""
    return Actor(ip=base.ip, user_agent=base.user_agent, name="staff")


@dataclass
class NewStaff:
    staff: Staff
    secret: str
    otpauth_uri: str


async def _ensure_app(rt: Runtime) -> None:
    """The hidden app ``staff``, made with the first staff member."""
    async with rt.db() as db:
        if await app_store.get_app(db, STAFF_APP_ID) is not None:
            return
        # Its users hear no notices of StepUp's; nothing ever sends them webhooks.
        db.add(App(id=STAFF_APP_ID, name=STAFF_APP_ID,
                   display_name=f"{rt.settings.issuer} support", url=None,
                   sends_per_hour=None, notices=False, created_at=rt.clock.now()))
        try:
            await db.commit()
        except IntegrityError:  # made meanwhile by another call
            await db.rollback()


async def create(rt: Runtime, actor: Actor, *, email: str, name: str, role: str,
                 password: str) -> NewStaff:
    """A staff member: a user of the app ``staff`` with its password and an enabled
    authenticator app protecting login (its secret shown once, by the CLI)."""
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
    password_hash = await run_cpu(rt.hasher.hash_password, password)
    await _ensure_app(rt)
    now = rt.clock.now()
    user = User(id=new_id(), app_id=STAFF_APP_ID, email=email, email_verified=True,
                phone_verified=False, verification_grade=0, password_hash=password_hash,
                pin_hash=None, language="en", created_at=now)
    staff = Staff(id=new_id(), user_id=user.id, email=email, name=name, role=role,
                  created_at=now, disabled_at=None)
    async with rt.db() as db:
        try:
            db.add(user)
            await db.flush()  # the user first: the staff row refers to it
            db.add(staff)
            await db.flush()
        except IntegrityError as exc:
            raise Conflict("A staff member with this e-mail address already exists.",
                           field="email") from exc
        setup = await _first_method(rt, db, actor, user)
        await audit.record(db, rt.clock, actor, "staff.created", None, staff=staff.id,
                           role=role)
        await db.commit()
    return NewStaff(staff=staff, secret=str(setup["secret"]),
                    otpauth_uri=str(setup["otpauth_uri"]))


async def _first_method(rt: Runtime, db: AsyncSession, actor: Actor, user: User) -> dict[str, Any]:
    """Enrol the first method through the method itself, and switch it on for login at
    once: the operator hands its secret over, there is nobody to confirm a code yet."""
    start = await registry.get(FIRST_METHOD).begin_enrollment(rt.method_context(db, actor),
                                                              user, {})
    row = await queries.get_method(db, user.id, FIRST_METHOD)
    assert row is not None  # begin_enrollment made it
    row.status = MethodStatus.ENABLED
    row.enabled_at = rt.clock.now()
    row.protects = initial_protects(rt.settings.operations, first_method=True)
    await audit.record(db, rt.clock, actor, "method.enabled", user.id, method=FIRST_METHOD)
    return dataclasses.asdict(start.body)


async def list_all(rt: Runtime) -> Sequence[Staff]:
    async with rt.db() as db:
        return await store.list_staff(db)


async def disable(rt: Runtime, actor: Actor, email: str) -> Staff:
    """Disable a staff member and end every session they have, at once. Their user
    keeps no password, so no login of theirs passes the first step again."""
    async with rt.db() as db:
        staff = await store.get_staff_by_email(db, normalise_email(email))
        if staff is None:
            raise NotFound("No staff member with this e-mail address.")
        if staff.disabled_at is None:
            staff.disabled_at = rt.clock.now()
            user = await queries.get_user(db, staff.user_id)
            if user is not None:
                user.password_hash = None
            await store.delete_sessions_of(db, staff.user_id)
            await audit.record(db, rt.clock, actor, "staff.disabled", None, staff=staff.id)
            await db.commit()
        return staff


# --- login -----------------------------------------------------------------------------


async def password_step(rt: Runtime, actor: Actor, email: str, password: str
                        ) -> login.LoginResult:
    """The password of a staff member's user; answers the login flow waiting for the
    second factor (its ``login_token`` and the methods that may complete it)."""
    result = await login.password_step(rt, login_actor(actor), email, password,
                                       app_id=STAFF_APP_ID, second_factor_always=True)
    assert result.login_token is not None  # a staff login never ends at the password
    return result


async def flow_methods(rt: Runtime, login_token: str) -> list[dict[str, Any]]:
    return await login.flow_methods(rt, login_token)


async def challenge(rt: Runtime, actor: Actor, login_token: str, method_type: str
                    ) -> ChallengeSent:
    return await login.challenge(rt, login_actor(actor), login_token, method_type)


async def second_factor(rt: Runtime, actor: Actor, login_token: str, method_type: str,
                        proof: str) -> str:
    """Complete a staff login with a method's proof; returns the new session's token."""
    result = await login.verify(rt, login_actor(actor), login_token, method_type, proof)
    assert result.session_token is not None
    try:
        await resolve(rt, result.session_token)
    except NotAuthenticated:
        # Some other login flow (not a staff member's, or one disabled meanwhile): its
        # session opens nothing here, and is not kept.
        await _end_token(rt, result.session_token)
        raise
    return result.session_token


async def _end_token(rt: Runtime, token: str) -> None:
    async with rt.db() as db:
        row = await queries.get_session_by_hash(db, rt.hasher.token_hash(token))
        if row is not None:
            await queries.delete_session(db, row.id)
            await db.commit()


@dataclass
class StaffAuth:
    staff: Staff
    session: Session
    user: User


async def resolve(rt: Runtime, token: str | None) -> StaffAuth:
    """The staff member behind a console session token: a live session of a user of the
    app ``staff`` whose staff member is not disabled; else ``NotAuthenticated``."""
    if not token:
        raise NotAuthenticated()
    auth = await sessions.resolve(rt, token, STAFF_APP_ID)
    async with rt.read() as db:
        member = await store.get_staff_by_user(db, auth.user.id)
    if member is None or member.disabled_at is not None:
        await sessions.end(rt, auth.session.id)
        raise NotAuthenticated("Your session has expired: log in again.")
    return StaffAuth(staff=member, session=auth.session, user=auth.user)


async def logout(rt: Runtime, session_id: str) -> None:
    await sessions.end(rt, session_id)
