"""Logging in: the password, then a security code from a method that protects login
(or a backup code). The ``login_token`` between the two steps is single use and short
lived; the session is created only when the second factor passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain import refusals
from stepup.domain.errors import (
    AccountLocked,
    Forbidden,
    InvalidCredentials,
    MethodNotEnabled,
    NotAuthenticated,
)
from stepup.domain.hashing import new_id, new_token
from stepup.domain.policy import (
    Completer,
    Completing,
    Purpose,
    completers,
    second_factor_required,
)
from stepup.methods.base import ChallengeSent
from stepup.services import audit, challenges, devices, ratelimit, sessions, verification
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.services.verification import check_code, commit_and_raise
from stepup.store import login_flows, queries
from stepup.store import operations as device_store
from stepup.store.models import PORTAL_APP_ID, LoginFlow, User
from stepup.store.models import Method as MethodRow


@dataclass
class LoginResult:
    status: str  # authenticated | second_factor_required
    session_token: str | None = None
    expires_at: datetime | None = None
    login_token: str | None = None
    methods: list[dict[str, Any]] = field(default_factory=list)
    user_id: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    remember_device_token: str | None = None
    language: str | None = None  # the account's, once authenticated


async def _offered(db: AsyncSession, user: User, methods: Sequence[MethodRow] | None = None
                   ) -> list[Completer[MethodRow]]:
    """What the login step offers, as the policy answers it: the methods protecting
    login, plus backup codes while some are unused. Nothing when nothing protects login:
    the password suffices. ``methods``: the user's, if read already."""
    rows = list(await queries.list_methods(db, user.id) if methods is None else methods)
    known = challenges.registered()
    if not second_factor_required(rows, known):
        return []
    spent = await challenges.spent_sets(db, user, rows)
    return completers(Completing.login(), rows, known, spent=spent)


async def login_methods(rt: Runtime, db: AsyncSession, user: User) -> list[MethodRow]:
    """The methods the login step offers (none: the password suffices)."""
    return [c.row for c in await _offered(db, user) if c.row is not None]


def _method_entry(rt: Runtime, row: MethodRow) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": row.type}
    masked = rt.destinations.masked(row.type, row)
    if masked:
        entry["destination"] = masked
    return entry


async def password_step(rt: Runtime, actor: Actor, email: str, password: str,
                        remember_device_token: str | None = None, *,
                        app_id: str = PORTAL_APP_ID,
                        second_factor_always: bool = False) -> LoginResult:
    """Check the password of ``app_id``'s user (StepUp's own pages', or the support
    staff's). No transaction is open while argon2 runs: the user and the remembered
    device are read in a read-only session, the attempt is counted in one short write
    (refused there if throttled), the hash is compared, and one more short write records
    the outcome with its audit event. ``second_factor_always``: a user with no method
    protecting login is refused (``forbidden.no_second_factor``), not let in."""
    valid = True
    try:
        email = normalise_email(email)
    except Exception:
        email = email.strip().lower()  # still hash and throttle: same answer, same time
        valid = False
    async with rt.read() as db:
        # No account has an invalid address; looking one up could even fail (PostgreSQL
        # refuses a NUL character in text) and answer 500 instead of "wrong password".
        user = await queries.get_user_by_email(db, email, app_id) if valid else None
        device_id = await _remembered_device(rt, db, user, remember_device_token)
    async with rt.db() as db:
        attempt = await ratelimit.reserve_attempt(db, rt.settings, rt.clock,
                                                  ratelimit.login_name(app_id, email),
                                                  actor.ip, device_id)
        await db.commit()
    delay = attempt.delay(rt.settings)
    if delay > 0:
        await asyncio.sleep(delay)
    ok = await run_cpu(rt.hasher.verify_password, user.password_hash if user else None,
                       password)
    async with rt.db() as db:
        current = await queries.get_user(db, user.id) if user is not None and ok else None
        if current is None:
            await ratelimit.password_failed(db, rt.settings, attempt)
            await audit.record(db, rt.clock, actor, "login.password_failed",
                               user.id if user else None)
            await commit_and_raise(db, InvalidCredentials())
        user = current
        try:
            await ratelimit.ensure_account_open(db, rt.clock, user.id)
        except AccountLocked as err:
            await ratelimit.release_attempt(db, attempt)
            await commit_and_raise(db, err)
        await ratelimit.password_passed(db, attempt)
        methods = await login_methods(rt, db, user)
        if not methods and second_factor_always:
            await audit.record(db, rt.clock, actor, "login.refused", user.id,
                               reason="no_second_factor")
            await commit_and_raise(db, Forbidden(situation="no_second_factor"))
        # Past the ceiling a remembered device gets through the throttle, but then the
        # second factor is asked all the same.
        remembered = (bool(methods) and not attempt.at_ceiling
                      and await devices.recognised(rt, db, user, remember_device_token))
        if not methods or remembered:
            new = await sessions.start(rt, db, user, actor)
            await devices.login_succeeded(rt, db, actor, user,
                                          "remembered_device" if remembered else None)
            await db.commit()
            return LoginResult("authenticated", session_token=new.token,
                               expires_at=new.expires_at, user_id=user.id,
                               language=user.language)
        token = new_token()
        now = rt.clock.now()
        db.add(LoginFlow(id=new_id(), token_hash=rt.hasher.token_hash(token), user_id=user.id,
                         created_at=now, used_at=None,
                         expires_at=now + timedelta(minutes=rt.settings.login_token_minutes)))
        await audit.record(db, rt.clock, actor, "login.password_passed", user.id)
        await db.commit()
        return LoginResult("second_factor_required", login_token=token,
                           methods=[_method_entry(rt, m) for m in methods], user_id=user.id)


async def _remembered_device(rt: Runtime, db: AsyncSession, user: User | None,
                             token: str | None) -> str | None:
    """The id of the live remembered device ``token`` names, if it is this user's: such
    an attempt is throttled on its own, not with its network (read only; the use is
    stamped by ``devices.recognised`` once the password passed)."""
    if user is None or not token:
        return None
    row = await device_store.device_by_hash(db, rt.hasher.token_hash(token))
    if row is None or row.user_id != user.id or row.expires_at <= rt.clock.now():
        return None
    return row.id


async def _open_flow(rt: Runtime, db: AsyncSession, login_token: str, *,
                     check_account: bool = True) -> tuple[LoginFlow, User]:
    """The login flow and its user. ``check_account=False`` when the caller goes on to
    ask for a method's guards, which read the account's lock in the same query."""
    flow, user = _usable(rt, *await login_flows.get_login_flow_and_user(
        db, rt.hasher.token_hash(login_token)))
    if check_account:
        await ratelimit.ensure_account_open(db, rt.clock, user.id)
    return flow, user


async def _open_flow_guards_and_methods(rt: Runtime, db: AsyncSession, login_token: str,
                                        method_type: str
                                        ) -> tuple[LoginFlow, User, queries.GuardStates,
                                                   list[MethodRow]]:
    """``_open_flow`` with the guards a check of ``method_type`` reads
    (``verification.check_code``'s ``guards``) and the user's methods, in one query."""
    flow, user, guards, methods = await login_flows.get_login_flow_user_guards_and_methods(
        db, rt.hasher.token_hash(login_token), ratelimit.scopes_of(method_type))
    flow, user = _usable(rt, flow, user)
    return flow, user, guards, methods


def _usable(rt: Runtime, flow: LoginFlow | None, user: User | None
            ) -> tuple[LoginFlow, User]:
    if flow is None or flow.used_at is not None:
        raise NotAuthenticated("This login attempt is no longer valid: log in again.")
    if flow.expires_at <= rt.clock.now():
        raise NotAuthenticated("This login attempt has expired: log in again.")
    if user is None:
        raise NotAuthenticated()
    return flow, user


async def _prepare(rt: Runtime, login_token: str, method_type: str, code: str
                   ) -> dict[bytes, bytes]:
    """The slow hashes of the code, made before the write transaction (backup codes)."""
    if not verification.needs_preparing(method_type):
        return {}
    async with rt.read() as db:
        flow = await login_flows.get_login_flow_by_hash(db, rt.hasher.token_hash(login_token))
    return await verification.prepare(rt, method_type, code, flow.user_id if flow else None)


async def _login_method(rt: Runtime, db: AsyncSession, user: User, method_type: str
                        ) -> MethodRow:
    return _pick(await _offered(db, user), method_type)


def _pick(offered: list[Completer[MethodRow]], method_type: str) -> MethodRow:
    """The login step names no switch: a method it does not offer "cannot be used",
    whatever the policy's reason."""
    chosen = challenges.choose(offered, [], method_type,
                               lambda _: MethodNotEnabled(
                                   f"'{method_type}' cannot be used to log in to this "
                                   "account."))
    assert chosen.row is not None  # a login is never completed by the account e-mail
    return chosen.row


async def flow_methods(rt: Runtime, login_token: str) -> list[dict[str, Any]]:
    async with rt.db() as db:
        _, user = await _open_flow(rt, db, login_token)
        return [_method_entry(rt, m) for m in await login_methods(rt, db, user)]


async def challenge(rt: Runtime, actor: Actor, login_token: str, method_type: str
                    ) -> ChallengeSent:
    async def find(db: AsyncSession) -> challenges.Target:
        _, user = await _open_flow(rt, db, login_token, check_account=False)
        row = await _login_method(rt, db, user, method_type)
        await ratelimit.ensure_method_open(db, rt.clock, user.id, row.type)
        return challenges.Target(user, Completer(row.type, row), Purpose.login())

    return await challenges.issue(rt, actor, find)


async def verify(rt: Runtime, actor: Actor, login_token: str, method_type: str, code: str,
                 *, remember_device: bool = False) -> LoginResult:
    prepared = await _prepare(rt, login_token, method_type, code)
    # Read first: the flow, the user, the methods and the code's check are read and done
    # before the write lock, which its first write takes (store/db.py); the writes that
    # must find things as read are compare-and-sets (the method's step, the flow's spending).
    async with rt.read_first() as db:
        flow, user, guards, methods = await _open_flow_guards_and_methods(
            rt, db, login_token, method_type)
        offered = await _offered(db, user, methods)
        rows = [c.row for c in offered if c.row is not None]
        # Refused, the page offers the same methods again: as read here, not read twice.
        with refusals.keeping(lambda: [_method_entry(rt, m) for m in rows]):
            row = _pick(offered, method_type)
            verified = await check_code(rt, db, actor, user, row, code, Purpose.login(),
                                        prepared=prepared,
                                        guards=guards if row.type == method_type else None)
        new = await sessions.start_completing(rt, db, user, actor, flow.id)
        if new is None:  # spent meanwhile
            raise NotAuthenticated("This login attempt is no longer valid: log in again.")
        with refusals.keeping(lambda: [_method_entry(rt, m) for m in rows]):
            # (its event may find the account's chain moved and the code's guards locked
            # since they were read: ``ratelimit.check_hold``)
            await devices.login_succeeded(rt, db, actor, user, row.type)
        device = await devices.remember(rt, db, user, actor) if remember_device else None
        await db.commit()
        return LoginResult("authenticated", session_token=new.token, expires_at=new.expires_at,
                           user_id=user.id, notes=verified.notes,
                           remember_device_token=device, language=user.language)
