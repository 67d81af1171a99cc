"""Checking a security code or a PIN with every guard around it.

Used by login, method management and operations alike, so a guess costs the same
everywhere: locks are checked first, a failure is counted, audited and committed
before the error goes back, a success clears the consecutive-failure count. A right
code that was already accepted (a retry, a double submit) is not a guess: it is
audited as ``code.replayed`` and answered ``code_already_used`` without being counted.

A method whose check needs a slow hash (backup codes: argon2) has it made by
``prepare`` before the caller opens its write transaction, so on SQLite no write lock
is held while hashing; ``check_code`` hands the digests to the method.
"""

from __future__ import annotations

from typing import NoReturn, cast

from sqlalchemy.ext.asyncio import AsyncSession

from stepup import metrics
from stepup.domain.errors import (
    AccountLocked,
    CodeAlreadyUsed,
    DomainError,
    MethodLocked,
    PinInvalid,
)
from stepup.domain.policy import PIN_SCOPE, Purpose
from stepup.methods import registry
from stepup.methods.base import PreparesProof, Verified
from stepup.services import audit, notifications, ratelimit
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store import step_spends
from stepup.store.audit import took_head
from stepup.store.db import overtaken, write_turn
from stepup.store.models import Method as MethodRow
from stepup.store.models import User
from stepup.store.queries import GuardStates


async def commit_and_raise(db: AsyncSession, error: DomainError) -> NoReturn:
    """Keep what was recorded about a failure (counts, audit), then report it."""
    await db.commit()
    raise error


# Whether a method's class prepares its proofs, asked once per class: ``isinstance``
# against a runtime-checkable Protocol walks the protocol's members on every call, and
# a method's abilities are its class's methods, fixed once it is registered.
_PREPARES: dict[type, bool] = {}


def _preparer(method_type: str) -> PreparesProof | None:
    method = registry.find(method_type)
    able = _PREPARES.get(type(method))
    if able is None:
        able = _PREPARES[type(method)] = isinstance(method, PreparesProof)
    return cast(PreparesProof, method) if able else None


def needs_preparing(method_type: str) -> bool:
    return _preparer(method_type) is not None


async def prepare(rt: Runtime, method_type: str, code: str, user_id: str | None
                  ) -> dict[bytes, bytes]:
    """The slow hashes ``check_code`` will need, made with no transaction open.

    Nothing for a method that needs none, an unknown user or a locked method (the
    check that follows refuses it without hashing)."""
    method = _preparer(method_type)
    if user_id is None or method is None:
        return {}
    async with rt.read() as db:
        try:
            await ratelimit.ensure_method_open(db, rt.clock, user_id, method_type)
        except DomainError:
            return {}
        salts = set(await method.proof_salts(db, user_id))
    prepared: dict[bytes, bytes] = {}
    for salt in salts:
        digest = await run_cpu(method.proof_hash, rt.hasher, code, salt)
        if digest is None:
            return {}  # malformed: the check refuses it without hashing
        prepared[salt] = digest
    return prepared


async def check_code(rt: Runtime, db: AsyncSession, actor: Actor, user: User, row: MethodRow,
                     code: str, purpose: Purpose, *, prepared: dict[bytes, bytes] | None = None,
                     guards: GuardStates | None = None) -> Verified:
    """``guards``: the user's guards of ``ratelimit.scopes_of(row.type)`` if the caller
    read them in ``db``'s transaction already (with the user: one statement fewer)."""
    read = await ratelimit.ensure_open_for_code(db, rt.clock, user.id, row.type, guards)
    method = registry.get(row.type)
    started = rt.clock.now()
    try:
        ctx = rt.method_context(db, actor)
        ctx.prepared = prepared or {}
        verified = await method.verify(ctx, user, row, code, purpose)
    except CodeAlreadyUsed as err:
        # Only a holder of the right code gets here, and only once the lock check above
        # let it through: not counting it cannot help anyone guess, and a portal's retry
        # cannot lock its user.
        metrics.verification(row.type, err.code)
        await audit.record(db, rt.clock, actor, "code.replayed", user.id, method=row.type,
                           purpose=purpose.value)
        await commit_and_raise(db, err)
    except DomainError as err:
        metrics.verification(row.type, err.code)
        locked = await ratelimit.method_failed(db, rt.settings, rt.clock, user.id, row.type)
        await audit.record(db, rt.clock, actor, "code.failed", user.id, method=row.type,
                           purpose=purpose.value, reason=err.code)
        if locked is not None:
            metrics.lock(locked.scope)
            event = _lock_event(locked, "method.locked")
            await audit.record(db, rt.clock, actor, event, user.id, method=row.type,
                               seconds=locked.seconds)
            await notifications.notify(rt, db, user, event, actor=actor, method=row.type,
                                       seconds=locked.seconds)
            await commit_and_raise(db, _lock_error(locked))
        await commit_and_raise(db, err)
    await write_turn(db)  # (a read-first transaction that has not written yet)
    if overtaken(db) or took_head(db, user.id):
        # The guards were read before the write lock (SQLite), or before this
        # transaction took the account's chain head, found moved (PostgreSQL), and others
        # wrote since: a lock that racing failures set meanwhile holds, as it would have
        # had the read come after them. Read again now, under the lock; nothing written
        # is kept.
        read = await ratelimit.ensure_open_for_code(db, rt.clock, user.id, row.type)
    else:
        # Read again, if need be, when the success's event takes the head (audit.py).
        ratelimit.hold(db, rt.clock, user.id, row.type)
    await ratelimit.method_passed(db, rt.clock, user.id, row.type, read)
    if row.last_used_at is None or row.last_used_at < started:
        row.last_used_at = started  # unless the method's own single-use UPDATE set it
    if not step_spends.pending(db):  # else told once the spend is made
        metrics.verification(row.type, "valid")
    # A backup code that serves to manage the codes themselves (regenerate, disable) is
    # about to make the warning moot.
    if verified.notes.get("low") and purpose != Purpose.manage(row.type):
        await notifications.notify(rt, db, user, "backup_codes.low", actor=actor,
                                   method=row.type, remaining=verified.notes.get("remaining"))
    return verified


def _lock_event(lock: ratelimit.Lock, event: str) -> str:
    return "account.locked" if lock.account else event


def _lock_error(lock: ratelimit.Lock) -> DomainError:
    # Told by the lock's scope, not by its length: a method lock as long as the account
    # lock is still a method lock, and the account lock wins when both fall together.
    if lock.account:
        return AccountLocked(retry_after=lock.seconds)
    if lock.scope == PIN_SCOPE:
        return MethodLocked(situation="pin", retry_after=lock.seconds)
    return MethodLocked(retry_after=lock.seconds)


async def check_pin(rt: Runtime, db: AsyncSession, actor: Actor, user: User, pin: str, *,
                    method: str | None = None) -> None:
    """``method``: the method being enabled with this PIN, if any (for the audit log).

    No transaction is open while argon2 runs: the lock is checked and the attempt
    counted, then the caller's transaction is committed (call this before writing
    anything that must commit with what follows: callers only read before it), and the
    outcome is recorded in the next transaction of the same session."""
    await ratelimit.ensure_pin_open(db, rt.clock, user.id)
    counted = await ratelimit.reserve_pin(db, rt.settings, user.id)
    await db.commit()
    if await run_cpu(rt.hasher.verify_password, user.pin_hash, pin or ""):
        await ratelimit.pin_passed(db, rt.clock, user.id)
        metrics.verification("pin", "valid")
        return
    metrics.verification("pin", "pin_invalid")
    locked = await ratelimit.pin_failed(db, rt.settings, rt.clock, user.id, counted=counted)
    about = {"method": method} if method else {}
    await audit.record(db, rt.clock, actor, "pin.failed", user.id, **about)
    if locked is not None:
        metrics.lock(locked.scope)
        event = _lock_event(locked, "pin.locked")
        await audit.record(db, rt.clock, actor, event, user.id, seconds=locked.seconds)
        await notifications.notify(rt, db, user, "account.locked" if locked.account
                                   else "method.locked", actor=actor, method="pin",
                                   seconds=locked.seconds)
        await commit_and_raise(db, _lock_error(locked))
    await commit_and_raise(db, PinInvalid())
