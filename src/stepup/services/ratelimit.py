"""Guessing is stopped here, in the database, so every worker shares the counts.

Guards count consecutive failures per user and scope (a method, the PIN, the account)
and lock the scope when they reach the limit; counters throttle password attempts (see
"password attempts" below) in fixed windows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup import metrics
from stepup.config import Settings
from stepup.domain.agents import network_of
from stepup.domain.clock import Clock
from stepup.domain.errors import AccountLocked, MethodLocked, RateLimited
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE, lock_seconds, method_scope
from stepup.store import queries
from stepup.store.db import of_transaction
from stepup.store.models import PORTAL_APP_ID


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

    def needs_clearing_after(self, method_type: str) -> bool:
        """Whether a success of ``method_type`` has a guard to clear (``method_passed``
        writes something)."""
        return self.needs_clearing(method_scope(method_type), keep_level=False) \
            or self.needs_clearing(ACCOUNT_SCOPE, keep_level=True)

    def locked_until(self, scope: str, now: datetime) -> datetime | None:
        """When ``scope``'s lock ends, if it is locked at ``now``."""
        state = self.states.get(scope)
        until = state[2] if state else None
        return until if until is not None and until > now else None


def scopes_of(method_type: str) -> tuple[str, str]:
    """The guards a check of ``method_type`` reads (``ensure_method_open``): the
    account's, then the method's. A query that reads the user can read them with it
    (``queries.get_user_method_and_guards``) and hand them to the check as ``read``."""
    return ACCOUNT_SCOPE, method_scope(method_type)


async def _read_open(db: AsyncSession, clock: Clock, user_id: str, scope: str | None,
                     read: queries.GuardStates | None = None
                     ) -> tuple[Guards, datetime | None]:
    """Read the account's guard and ``scope``'s (unless ``read`` holds them, read
    earlier in the same transaction); raise if the account is locked."""
    scopes = [ACCOUNT_SCOPE] if scope is None else [ACCOUNT_SCOPE, scope]
    if read is None:
        read = await queries.get_guard_states(db, user_id, scopes)
    guards = Guards(read)
    now = clock.now()
    account_until = guards.locked_until(ACCOUNT_SCOPE, now)
    if account_until is not None:
        raise AccountLocked(
            "Too many failed attempts: the account is locked. Try again later or contact "
            "support.", retry_after=_retry_after(account_until, now))
    return guards, None if scope is None else guards.locked_until(scope, now)


async def ensure_account_open(db: AsyncSession, clock: Clock, user_id: str) -> None:
    await _read_open(db, clock, user_id, None)


async def ensure_method_open(db: AsyncSession, clock: Clock, user_id: str, method_type: str,
                             read: queries.GuardStates | None = None) -> Guards:
    """Raise if the account or the method is locked; the guards as read. ``read``: the
    guards of ``scopes_of(method_type)``, read in this transaction already."""
    guards, until = await _read_open(db, clock, user_id, method_scope(method_type), read)
    if until is not None:
        raise MethodLocked(retry_after=_retry_after(until, clock.now()))
    return guards


async def ensure_pin_open(db: AsyncSession, clock: Clock, user_id: str) -> Guards:
    guards, until = await _read_open(db, clock, user_id, PIN_SCOPE)
    if until is not None:
        raise MethodLocked(situation="pin", retry_after=_retry_after(until, clock.now()))
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


async def reserve_pin(db: AsyncSession, settings: Settings, user_id: str) -> int:
    """Count a PIN attempt as a failure before the PIN is compared (so racing guesses
    cannot all pass the lock check); answers the count, for ``pin_failed``. Raises
    ``MethodLocked`` when racing attempts already used up the limit (the caller rolls
    back); a right PIN clears the count (``pin_passed``)."""
    failures, _ = await queries.add_guard_failure(db, user_id, PIN_SCOPE)
    if failures > settings.pin_lock_after:
        raise MethodLocked(situation="pin", retry_after=settings.pin_lock_seconds)
    return failures


async def pin_failed(db: AsyncSession, settings: Settings, clock: Clock, user_id: str,
                     *, counted: int | None = None) -> Lock | None:
    """``counted``: the failures ``reserve_pin`` already counted with this one."""
    account = await _account_failed(db, settings, clock, user_id)
    if counted is None:
        failures, _ = await queries.add_guard_failure(db, user_id, PIN_SCOPE)
    else:
        failures = counted
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


async def method_passed(db: AsyncSession, clock: Clock, user_id: str, method_type: str,
                        guards: Guards | None = None) -> None:
    """A success ends the run of failures: the method's guard entirely (its lock level
    too), the account's failures but not its level. ``guards``: as read before the
    check, to skip writes with nothing to clear; a failure that races in after that read
    stays counted, which errs on the locked side. A lock that racing failures committed
    since stays too (``queries.clear_guard``'s ``unless_locked_at``)."""
    await _passed(db, clock, user_id, method_scope(method_type), guards)


async def pin_passed(db: AsyncSession, clock: Clock, user_id: str,
                     guards: Guards | None = None) -> None:
    await _passed(db, clock, user_id, PIN_SCOPE, guards)


async def _passed(db: AsyncSession, clock: Clock, user_id: str, scope: str,
                  guards: Guards | None) -> None:
    # The account's guard first, as a failure counts it first (``_account_failed``): two
    # transactions that take both rows take them in one order, so neither waits for the
    # other's second while holding the first.
    if guards is None or guards.needs_clearing(ACCOUNT_SCOPE, keep_level=True):
        await queries.clear_guard(db, user_id, ACCOUNT_SCOPE, keep_level=True,
                                  unless_locked_at=clock.now())
    if guards is None or guards.needs_clearing(scope, keep_level=False):
        await queries.clear_guard(db, user_id, scope, unless_locked_at=clock.now())


# A right code's guards, to read again once its transaction holds its account's chain
# head (``hold``, ``check_hold``).
_HOLD = "guard_hold"


def hold(db: AsyncSession, clock: Clock, user_id: str, method_type: str) -> None:
    """A right code of ``method_type`` passed in ``db``'s transaction on guards read
    before it took any lock: should the transaction find the account's chain head moved
    when it records the success (``store.audit.took_head``), failures may have locked the
    method or the account since, and ``check_hold`` reads the guards again. SQLite's
    read-first transactions do so when they take the write lock
    (``store.db.overtaken``); PostgreSQL's READ COMMITTED ones here."""
    of_transaction(db).setdefault(_HOLD, {})[user_id, method_type] = clock


async def check_hold(db: AsyncSession, user_id: str) -> None:
    """Raise if a right code that ``db``'s transaction holds for ``user_id`` (``hold``)
    is now refused by a lock: called with the account's chain head held, so no lock can
    commit after this read and before the transaction does."""
    holds: dict[tuple[str, str], Clock] = of_transaction(db).get(_HOLD, {})
    for user, method_type in [k for k in holds if k[0] == user_id]:
        # From here on the head is held: nothing to read again.
        await ensure_open_for_code(db, holds.pop((user, method_type)), user_id, method_type)


async def ensure_open_for_code(db: AsyncSession, clock: Clock, user_id: str,
                               method_type: str, read: queries.GuardStates | None = None
                               ) -> Guards:
    """``ensure_method_open`` for a code being checked: before it is compared, and for a
    right code whose guards were read before others wrote, again under the lock that
    now keeps them. A refusal is a locked verification, counted as such."""
    try:
        return await ensure_method_open(db, clock, user_id, method_type, read)
    except (AccountLocked, MethodLocked):
        metrics.verification(method_type, "locked")
        raise


async def unlock(db: AsyncSession, user_id: str, scope: str) -> None:
    await queries.clear_guard(db, user_id, scope)


# --- password attempts ----------------------------------------------------------------
#
# Every counter is keyed by the e-mail as typed (known or not, so that no answer tells
# whether an account exists):
#   pw:<e>:net:<network>  failures from one client network (IPv4 /24, IPv6 /64) in the
#                         window: the attacker's address is refused, not the owner's;
#   pw:<e>:dev:<id>       the same for an attempt carrying a remembered device, which the
#                         networks' throttle and the ceiling let through;
#   pw:<e>                failures from anywhere since the last success, over the current
#                         and the previous ceiling window: from PASSWORD_FAILURES_PER_ACCOUNT
#                         on, attempts are slowed down; at PASSWORD_ACCOUNT_CEILING refused
#                         (a remembered device passes, then needs the second factor);
#   pw-ip:<network>       every failure from one network, any e-mail (spraying).
# An attempt is counted as a failure *before* its password is compared (reserve_attempt,
# one short write transaction), so concurrent guesses cannot all slip under a limit; a
# right password gives the count back (password_passed).


def login_name(app_id: str, email: str) -> str:
    """What an app's password counters are keyed by: the e-mail on StepUp's own pages,
    the app and the e-mail on any other login (the support console's), so guessing one
    app's password never throttles another's login of the same address."""
    return email if app_id == PORTAL_APP_ID else f"{app_id}:{email}"


def _window(clock: Clock, seconds: int) -> tuple[datetime, datetime]:
    now = clock.now()
    start_ts = int(now.timestamp()) // seconds * seconds
    start = datetime.fromtimestamp(start_ts, tz=now.tzinfo)
    return start, start + timedelta(seconds=seconds)


def _email_key(email: str) -> str:
    return "pw:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _limited(until: datetime, now: datetime) -> RateLimited:
    return RateLimited("Too many failed logins: wait a few minutes and try again.",
                       retry_after=_retry_after(until, now))


@dataclass(frozen=True)
class PasswordAttempt:
    """What one password attempt reserved, for giving it back or keeping it."""

    account_key: str
    source_key: str  # the network's counter, or the remembered device's
    ip_key: str | None
    window: datetime
    ceiling_window: datetime
    failures_before: int  # the account's, from anywhere
    at_ceiling: bool  # let through only for a remembered device

    def delay(self, settings: Settings) -> float:
        """Seconds to wait before comparing: slow down, never refuse, the owner."""
        excess = self.failures_before - settings.password_failures_per_account + 1
        if excess <= 0 or self.source_key.startswith(self.account_key + ":dev:"):
            return 0.0
        return min(settings.password_slowdown_max_seconds,
                   settings.password_slowdown_seconds * excess)


async def reserve_attempt(db: AsyncSession, settings: Settings, clock: Clock, email: str,
                          ip: str | None, device_id: str | None = None) -> PasswordAttempt:
    """Count this attempt as a failure, or raise ``RateLimited`` (the caller then rolls
    back, so a refused attempt counts nowhere). Every counter is one atomic upsert that
    answers its new value, so racing attempts are decided by the database. The caller
    commits before comparing the password."""
    now = clock.now()
    window, end = _window(clock, settings.password_throttle_window_seconds)
    account = _email_key(email)
    network = network_of(ip)
    ip_key = None
    if device_id is not None:
        source = f"{account}:dev:{device_id}"
    else:
        source = f"{account}:net:{(network or 'unknown')[:60]}"
        if network:
            ip_key = f"pw-ip:{network[:60]}"
            if await queries.rate_hit(db, ip_key, window) > settings.password_failures_per_ip:
                raise _limited(end, now)
    if await queries.rate_hit(db, source, window) > settings.password_failures_per_address:
        raise _limited(end, now)
    seconds = settings.password_ceiling_window_seconds
    ceiling_window, ceiling_end = _window(clock, seconds)
    current = await queries.rate_hit(db, account, ceiling_window) - 1
    before = current + await queries.rate_value(
        db, account, ceiling_window - timedelta(seconds=seconds))
    at_ceiling = before >= settings.password_account_ceiling
    if at_ceiling and device_id is None:
        # The count falls under the ceiling when the previous window drops out, or the
        # one after if the current window alone reached it.
        until = ceiling_end + (timedelta(seconds=seconds)
                               if current >= settings.password_account_ceiling
                               else timedelta(0))
        raise _limited(until, now)
    return PasswordAttempt(account, source, ip_key, window, ceiling_window, before,
                           at_ceiling)


async def password_failed(db: AsyncSession, settings: Settings, attempt: PasswordAttempt
                          ) -> None:
    """The reserved count stands; old windows are pruned (the ceiling's two kept)."""
    keep = min(attempt.window - timedelta(days=1), attempt.ceiling_window
               - timedelta(seconds=settings.password_ceiling_window_seconds))
    await queries.prune_rate_counters(db, keep)


async def password_passed(db: AsyncSession, attempt: PasswordAttempt) -> None:
    """A right password ends the run of failures of this e-mail from anywhere and from
    this network (or device); other networks' counts stay, so an attacker's address
    stays throttled. The per-network-cap count is given back."""
    await queries.rate_reset(db, attempt.account_key)
    await queries.rate_reset(db, attempt.source_key)
    if attempt.ip_key is not None:
        await queries.rate_hit(db, attempt.ip_key, attempt.window, -1)


async def release_attempt(db: AsyncSession, attempt: PasswordAttempt) -> None:
    """Give back what the attempt reserved, when it was neither a failure nor a success
    (the right password on a locked account)."""
    await queries.rate_hit(db, attempt.account_key, attempt.ceiling_window, -1)
    await queries.rate_hit(db, attempt.source_key, attempt.window, -1)
    if attempt.ip_key is not None:
        await queries.rate_hit(db, attempt.ip_key, attempt.window, -1)


async def unlock_password(db: AsyncSession, email: str) -> None:
    """Support's unlock: every password counter of this e-mail (from every network and
    device). The per-network caps are not the account's and stay."""
    await queries.rate_reset_prefix(db, _email_key(email))
