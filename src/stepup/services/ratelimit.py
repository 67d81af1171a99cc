"""Guessing is stopped here, in the database, so every worker shares the counts.

Guards count consecutive failures per user and scope (a method, the PIN, the account)
and lock the scope when they reach the limit; counters throttle password attempts per
account and per client IP in fixed windows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.config import Settings
from stepup.domain.clock import Clock
from stepup.domain.errors import AccountLocked, MethodLocked, RateLimited
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE, lock_seconds, method_scope
from stepup.store import queries


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


@dataclass(frozen=True)
class Guards:
    """The guards of one check as read before it (failures, level, locked_until by scope),
    so that a success writes only the guards that hold something to clear."""

    states: dict[str, tuple[int, int, datetime | None]]

    def needs_clearing(self, scope: str, *, keep_level: bool) -> bool:
        state = self.states.get(scope)
        if state is None:
            return False
        failures, level, until = state
        return failures != 0 or until is not None or (not keep_level and level != 0)

    def locked_until(self, scope: str, now: datetime) -> datetime | None:
        """When ``scope``'s lock ends, if it is locked at ``now``."""
        state = self.states.get(scope)
        until = state[2] if state else None
        return until if until is not None and until > now else None


async def _read_open(db: AsyncSession, clock: Clock, user_id: str, scope: str | None
                     ) -> tuple[Guards, datetime | None]:
    """Read the account's guard and ``scope``'s; raise if the account is locked."""
    scopes = [ACCOUNT_SCOPE] if scope is None else [ACCOUNT_SCOPE, scope]
    guards = Guards(await queries.get_guard_states(db, user_id, scopes))
    now = clock.now()
    account_until = guards.locked_until(ACCOUNT_SCOPE, now)
    if account_until is not None:
        raise AccountLocked(
            "Too many failed attempts: the account is locked. Try again later or contact "
            "support.", retry_after=_retry_after(account_until, now))
    return guards, None if scope is None else guards.locked_until(scope, now)


async def ensure_account_open(db: AsyncSession, clock: Clock, user_id: str) -> None:
    await _read_open(db, clock, user_id, None)


async def ensure_method_open(db: AsyncSession, clock: Clock, user_id: str, method_type: str
                             ) -> Guards:
    guards, until = await _read_open(db, clock, user_id, method_scope(method_type))
    if until is not None:
        raise MethodLocked(retry_after=_retry_after(until, clock.now()))
    return guards


async def ensure_pin_open(db: AsyncSession, clock: Clock, user_id: str) -> Guards:
    guards, until = await _read_open(db, clock, user_id, PIN_SCOPE)
    if until is not None:
        raise MethodLocked("Too many wrong PINs: the PIN is locked for a while.",
                           retry_after=_retry_after(until, clock.now()))
    return guards


@dataclass(frozen=True)
class Lock:
    """A lock that a failure just set: on the account (every method) or on one scope."""

    scope: str
    seconds: int

    @property
    def account(self) -> bool:
        return self.scope == ACCOUNT_SCOPE


async def method_failed(db: AsyncSession, settings: Settings, clock: Clock, user_id: str,
                        method_type: str) -> Lock | None:
    """Count a wrong code; returns the lock it set, if any (the account's comes first)."""
    account = await _account_failed(db, settings, clock, user_id)
    scope = method_scope(method_type)
    failures, level = await queries.add_guard_failure(db, user_id, scope)
    method = None
    if failures >= settings.method_lock_after:
        seconds = lock_seconds(level, settings.method_lock_first_seconds,
                               settings.method_lock_max_seconds)
        await queries.lock_guard(db, user_id, scope, clock.now() + timedelta(seconds=seconds),
                                 level + 1)
        method = Lock(scope, seconds)
    return account or method


async def pin_failed(db: AsyncSession, settings: Settings, clock: Clock, user_id: str
                     ) -> Lock | None:
    account = await _account_failed(db, settings, clock, user_id)
    failures, _ = await queries.add_guard_failure(db, user_id, PIN_SCOPE)
    pin = None
    if failures >= settings.pin_lock_after:
        await queries.lock_guard(db, user_id, PIN_SCOPE,
                                 clock.now() + timedelta(seconds=settings.pin_lock_seconds), 0)
        pin = Lock(PIN_SCOPE, settings.pin_lock_seconds)
    return account or pin


async def _account_failed(db: AsyncSession, settings: Settings, clock: Clock, user_id: str
                          ) -> Lock | None:
    failures, _ = await queries.add_guard_failure(db, user_id, ACCOUNT_SCOPE)
    if failures >= settings.account_lock_after:
        until = clock.now() + timedelta(seconds=settings.account_lock_seconds)
        await queries.lock_guard(db, user_id, ACCOUNT_SCOPE, until, 0)
        return Lock(ACCOUNT_SCOPE, settings.account_lock_seconds)
    return None


async def method_passed(db: AsyncSession, user_id: str, method_type: str,
                        guards: Guards | None = None) -> None:
    """A success ends the run of failures: the method's guard entirely (its lock level
    too), the account's failures but not its level. ``guards``: as read before the
    check, to skip writes with nothing to clear; a failure that races in after that read
    stays counted, which errs on the locked side."""
    await _passed(db, user_id, method_scope(method_type), guards)


async def pin_passed(db: AsyncSession, user_id: str, guards: Guards | None = None) -> None:
    await _passed(db, user_id, PIN_SCOPE, guards)


async def _passed(db: AsyncSession, user_id: str, scope: str, guards: Guards | None) -> None:
    if guards is None or guards.needs_clearing(scope, keep_level=False):
        await queries.clear_guard(db, user_id, scope)
    if guards is None or guards.needs_clearing(ACCOUNT_SCOPE, keep_level=True):
        await queries.clear_guard(db, user_id, ACCOUNT_SCOPE, keep_level=True)


async def unlock(db: AsyncSession, user_id: str, scope: str) -> None:
    await queries.clear_guard(db, user_id, scope)


# --- fixed-window counters -----------------------------------------------------------


def _window(clock: Clock, seconds: int) -> tuple[datetime, datetime]:
    now = clock.now()
    start_ts = int(now.timestamp()) // seconds * seconds
    start = datetime.fromtimestamp(start_ts, tz=now.tzinfo)
    return start, start + timedelta(seconds=seconds)


def _email_key(email: str) -> str:
    # Keyed by the address typed, known or not, so throttling never reveals an account.
    return "pw-email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


async def ensure_password_attempts_left(db: AsyncSession, settings: Settings, clock: Clock,
                                        email: str, ip: str | None) -> None:
    start, end = _window(clock, settings.password_throttle_window_seconds)
    checks = [(_email_key(email), settings.password_failures_per_account)]
    if ip:
        checks.append((f"pw-ip:{ip}", settings.password_failures_per_ip))
    for key, limit in checks:
        if await queries.rate_value(db, key, start) >= limit:
            raise RateLimited("Too many failed logins: wait a few minutes and try again.",
                              retry_after=_retry_after(end, clock.now()))


async def password_failed(db: AsyncSession, settings: Settings, clock: Clock, email: str,
                          ip: str | None) -> None:
    start, _ = _window(clock, settings.password_throttle_window_seconds)
    await queries.rate_hit(db, _email_key(email), start)
    if ip:
        await queries.rate_hit(db, f"pw-ip:{ip}", start)
    await queries.prune_rate_counters(db, start - timedelta(days=1))


async def password_passed(db: AsyncSession, email: str) -> None:
    await queries.rate_reset(db, _email_key(email))
