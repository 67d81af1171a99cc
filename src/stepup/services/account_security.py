"""Account security: changing the password, changing the PIN, and "Forgot password?".

- **Change the password**: the current password (throttled like a login of the same
  e-mail from the same network: ``ratelimit.reserve_attempt``), and a new one by the
  sign-up rules. Every other session and every unfinished login ends, remembered devices
  are forgotten and unused reset links spent; the caller's own session is replaced by a
  new one when the caller asks (the pages do: a session token that a thief may have
  copied stops working).
- **Change the PIN**: the password, plus a code from any enabled method (``PIN_PURPOSE``:
  a code issued for anything else does not serve) — or, for an account with no method,
  a code sent to the account e-mail, which proves the mailbox as a reset link would.
- **Forgot password**: a single-use link (a random token of 256 bits, only its SHA-256
  stored) valid ``password_reset_minutes``, queued for the account e-mail. The answer
  is the same whether or not the address has an account, and so is the time it takes:
  the request only counts itself (``count_reset_request``: the same counters for any
  address, and its refusals); the per-account part (``send_reset_link``: the lookup,
  the link, its e-mail, one audit event either way) runs after the answer is sent, so
  its extra writes for a known address cannot be timed. Asking again spends the
  older link; a successful login does not (the link stays the mailbox owner's for its
  short life). Using it sets the password and ends every session, unfinished login and
  remembered device: it never logs in, so the next login asks for the second factor
  when a method protects login (the page after the reset says which).

Each change is audited and told to the user (``services/notifications.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.delivery.password_reset import RESET_LINK
from stepup.domain.agents import network_of
from stepup.domain.clock import hour_window
from stepup.domain.codes import check_password, check_pin
from stepup.domain.errors import (
    InvalidCredentials,
    InvalidResetToken,
    MethodNotEnabled,
    RateLimited,
    ValidationFailed,
)
from stepup.domain.hashing import new_id, new_token
from stepup.domain.policy import Completer, MethodStatus, Purpose
from stepup.methods.base import ChallengeSent
from stepup.services import (
    audit,
    challenges,
    devices,
    login,
    notifications,
    ratelimit,
    sessions,
)
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu, user_or_not_found
from stepup.services.verification import check_code, commit_and_raise, prepare
from stepup.store import notices, queries
from stepup.store import passwords as store
from stepup.store.models import PORTAL_APP_ID, PasswordReset, User
from stepup.store.models import Method as MethodRow

log = logging.getLogger("stepup.account_security")

#: What a code for changing the PIN is issued for: it confirms nothing else.
PIN_PURPOSE = Purpose("account:pin")


def _new_password(rt: Runtime, password: str, email: str, field: str) -> None:
    """The sign-up rules; the error names the form's field."""
    try:
        check_password(password, email=email, min_length=rt.settings.password_min_length,
                       max_length=rt.settings.password_max_length,
                       context=rt.settings.password_context)
    except ValidationFailed as err:
        err.field = field
        raise


async def _check_password(rt: Runtime, actor: Actor, user: User, password: str,
                          purpose: str) -> None:
    """The user's password, throttled and counted like a login attempt of the same
    e-mail from the same network: a stolen session cannot guess it faster than the
    login page could. No transaction is open while argon2 runs."""
    async with rt.db() as db:
        attempt = await ratelimit.reserve_attempt(
            db, rt.settings, rt.clock, ratelimit.login_name(user.app_id, user.email),
            actor.ip)
        await db.commit()
    delay = attempt.delay(rt.settings)
    if delay > 0:
        await asyncio.sleep(delay)
    ok = await run_cpu(rt.hasher.verify_password, user.password_hash, password)
    async with rt.db() as db:
        if not ok:
            await ratelimit.password_failed(db, rt.settings, attempt)
            await audit.record(db, rt.clock, actor, "password.check_failed", user.id,
                               purpose=purpose)
            await commit_and_raise(db, InvalidCredentials(situation="current_password"))
        await ratelimit.password_passed(db, attempt)
        await db.commit()


async def _end_everything(rt: Runtime, db: AsyncSession, actor: Actor, user: User, *,
                          keep: str | None, reason: str) -> int:
    """End the user's sessions but ``keep``, their unfinished logins, their remembered
    devices and their unused reset links; answers how many sessions ended."""
    ended = await store.end_sessions(db, user.id, keep=keep)
    await store.spend_resets(db, user.id, rt.clock.now())
    await devices.forget_all(rt, db, user.id, actor, reason=reason)
    return ended


# --- changing the password -------------------------------------------------------------


async def change_password(rt: Runtime, actor: Actor, user_id: str, session_id: str, *,
                          current_password: str, new_password: str, rotate: bool = False
                          ) -> sessions.NewSession | None:
    """Set a new password; every other session ends. ``rotate``: the caller's session is
    replaced too, and the new one answered (else it stays as it is, and None)."""
    async with rt.read() as db:
        user = await user_or_not_found(db, user_id)
    _new_password(rt, new_password, user.email, "new_password")
    await _check_password(rt, actor, user, current_password, "password_change")
    password_hash = await run_cpu(rt.hasher.hash_password, new_password)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        user.password_hash = password_hash
        ended = await _end_everything(rt, db, actor, user, keep=session_id,
                                      reason="account.password_changed")
        new = None
        if rotate:
            await queries.delete_session(db, session_id)
            new = await sessions.start(rt, db, user, actor)
        await audit.record(db, rt.clock, actor, "account.password_changed", user.id,
                           sessions_ended=ended)
        await notifications.notify(rt, db, user, "account.password_changed", actor=actor)
        await db.commit()
    return new


# --- changing the PIN ------------------------------------------------------------------


async def _pin_completers(rt: Runtime, db: AsyncSession, user: User
                          ) -> list[Completer[MethodRow]]:
    """What may confirm a new PIN: any enabled method (a set of codes with none left
    aside), login fallbacks last; with none, the account e-mail."""
    rows = list(await queries.list_methods(db, user.id))
    known = challenges.registered()
    spent = await challenges.spent_sets(db, user, rows)
    out = [Completer(r.type, r) for r in rows if r.type in known.types
           and r.status == MethodStatus.ENABLED and r.type not in spent]
    out.sort(key=lambda c: c.type in known.login_fallbacks)
    if not out and known.account_email is not None:
        out.append(Completer(known.account_email))
    return out


async def pin_methods(rt: Runtime, user_id: str) -> list[dict[str, str]]:
    """The choices for the code that confirms a new PIN: ``{type, destination?}``;
    ``account_email`` when the only one is a code to the account e-mail."""
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        out = []
        for c in await _pin_completers(rt, db, user):
            entry = {"type": c.type}
            masked = rt.destinations.masked(c.type, challenges.method_row(rt, user, c))
            if masked:
                entry["destination"] = masked
            if c.account_email:
                entry["account_email"] = "1"
            out.append(entry)
        return out


def _choose(offered: list[Completer[MethodRow]], rows: list[MethodRow], method: str | None
            ) -> Completer[MethodRow]:
    if method is None and offered:
        return offered[0]
    return challenges.choose(offered, rows, method or "", lambda _: MethodNotEnabled(
        f"'{method}' cannot confirm a change of the PIN of this account."))


async def pin_challenge(rt: Runtime, actor: Actor, user_id: str, method: str | None
                        ) -> ChallengeSent:
    """Send a code that confirms a new PIN (an out-of-band method, or the account e-mail);
    for a passkey, the request the browser answers."""
    async def find(db: AsyncSession) -> challenges.Target:
        user = await user_or_not_found(db, user_id)
        offered = await _pin_completers(rt, db, user)
        chosen = _choose(offered, [c.row for c in offered if c.row is not None], method)
        return challenges.Target(user, chosen, PIN_PURPOSE)

    return await challenges.issue(rt, actor, find)


async def change_pin(rt: Runtime, actor: Actor, user_id: str, *, password: str,
                     new_pin: str, method: str | None, code: str | None) -> None:
    """Set a new PIN: the password and a code from ``method`` (default: the first the
    account offers), issued for ``PIN_PURPOSE``."""
    check_pin(new_pin, field="new_pin")
    if not code:
        raise ValidationFailed("Enter a security code to confirm the new PIN.", field="code")
    async with rt.read() as db:
        user = await user_or_not_found(db, user_id)
        if method is None:
            offered = await _pin_completers(rt, db, user)
            method = offered[0].type if offered else None
    await _check_password(rt, actor, user, password, "pin_change")
    prepared = await prepare(rt, method, code, user_id) if method else {}
    pin_hash = await run_cpu(rt.hasher.hash_password, new_pin)
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        offered = await _pin_completers(rt, db, user)
        chosen = _choose(offered, [c.row for c in offered if c.row is not None], method)
        await check_code(rt, db, actor, user, challenges.method_row(rt, user, chosen), code,
                         PIN_PURPOSE, prepared=prepared)
        if chosen.account_email:
            user.email_verified = True  # the code reached it
        user.pin_hash = pin_hash
        await audit.record(db, rt.clock, actor, "account.pin_changed", user.id,
                           method=chosen.type)
        await notifications.notify(rt, db, user, "account.pin_changed", actor=actor)
        await db.commit()


# --- forgot password -------------------------------------------------------------------


def reset_url(rt: Runtime, token: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/password/reset?token={token}"


def _counted(kind: str, value: str) -> str:
    return f"pwreset-{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]


async def _count_request(rt: Runtime, db: AsyncSession, actor: Actor, email: str) -> None:
    """Count the request per e-mail (known or not) and per client network in the hour;
    ``RateLimited`` over either (the caller's transaction rolls back: not counted)."""
    window, retry = hour_window(rt.clock.now())
    network = network_of(actor.ip)
    if network is not None and await queries.rate_hit(
            db, _counted("net", network), window) > rt.settings.password_resets_per_ip_per_hour:
        raise RateLimited(retry_after=retry)
    if await queries.rate_hit(db, _counted("email", email), window) > \
            rt.settings.password_resets_per_email_per_hour:
        raise RateLimited(retry_after=retry)


@dataclass(frozen=True)
class ResetAsked:
    """A counted "Forgot password?" request, for ``send_reset_link``: who asked, the
    normalised address (None when malformed: no account has it) and when."""

    actor: Actor
    address: str | None
    at: datetime


async def count_reset_request(rt: Runtime, actor: Actor, email: str) -> ResetAsked:
    """The part of "Forgot password?" that the answer waits for, the same work for any
    address: normalise it and count the request (``RateLimited`` over a limit, and then
    not counted). Whether the address has an account is not looked at here."""
    try:
        address: str | None = normalise_email(email)
    except Exception:  # any malformed address: no account has it, answered alike
        address = None
    async with rt.db() as db:
        await _count_request(rt, db, actor, address or email.strip().lower())
        await db.commit()
    return ResetAsked(actor=actor, address=address, at=rt.clock.now())


async def send_reset_link(rt: Runtime, asked: ResetAsked) -> None:
    """The rest, run once the answer has gone out: a reset link to the address if it is
    a StepUp account's (only the users of StepUp's own pages, app ``portal``, have a
    password here), and one audit event either way. It never raises: the asker was
    answered already, so a failure is logged and nothing more."""
    try:
        await _send_reset_link(rt, asked)
    except Exception:
        log.exception("could not handle a password reset request")


async def _send_reset_link(rt: Runtime, asked: ResetAsked) -> None:
    now, actor = asked.at, asked.actor
    async with rt.db() as db:
        user = (await queries.get_user_by_email(db, asked.address, PORTAL_APP_ID)
                if asked.address else None)
        # Only the users of StepUp's own pages have a password here.
        owner = user if user is not None and user.password_hash else None
        # One event either way (an unknown address is not named in it). Recorded first:
        # on the account's chain it locks the account's row until COMMIT, so racing
        # requests for one account take turns, and each spends the links before it
        # (PostgreSQL's spend would not see a racing request's uncommitted link).
        await audit.record(db, rt.clock, actor, "password.reset_requested",
                           owner.id if owner is not None else None)
        if owner is not None:
            await store.spend_resets(db, owner.id, now)
            token = new_token()
            minutes = rt.settings.password_reset_minutes
            db.add(PasswordReset(id=new_id(), user_id=owner.id,
                                 token_hash=rt.hasher.token_hash(token), created_at=now,
                                 expires_at=now + timedelta(minutes=minutes), used_at=None))
            await notices.enqueue(db, rt.destinations, now, user_id=owner.id,
                                  kind=RESET_LINK, channel="email", to=owner.email,
                                  language=owner.language or "en",
                                  data={"reset_url": reset_url(rt, token),
                                        "minutes": minutes, "at": now.isoformat()})
            await store.prune_resets(db, now - timedelta(days=1))
        await db.commit()


async def _live_reset(rt: Runtime, db: AsyncSession, token: str) -> PasswordReset:
    reset = await store.reset_by_hash(db, rt.hasher.token_hash(token)) if token else None
    if reset is None or reset.used_at is not None or reset.expires_at <= rt.clock.now():
        raise InvalidResetToken()
    return reset


async def check_reset(rt: Runtime, token: str) -> None:
    """``InvalidResetToken`` unless the link still works (the page that asks for the new
    password says so before anything is typed)."""
    async with rt.read() as db:
        await _live_reset(rt, db, token)


async def reset_password(rt: Runtime, actor: Actor, token: str, new_password: str) -> bool:
    """Set the password a reset link allows; the link is spent, and every session,
    unfinished login and remembered device of the account ends. Nobody is logged in.
    Answers whether the next login asks for a second factor (as the login step decides
    it: some method protects login), so that a page never claims one that is not."""
    async with rt.read() as db:
        reset = await _live_reset(rt, db, token)
        user = await user_or_not_found(db, reset.user_id)
    _new_password(rt, new_password, user.email, "new_password")
    password_hash = await run_cpu(rt.hasher.hash_password, new_password)
    async with rt.db() as db:
        if not await store.use_reset(db, reset.id, rt.clock.now()):
            raise InvalidResetToken()  # a racing submit of the same link won
        user = await user_or_not_found(db, reset.user_id)
        user.password_hash = password_hash
        ended = await _end_everything(rt, db, actor, user, keep=None,
                                      reason="account.password_reset")
        await audit.record(db, rt.clock, actor, "account.password_reset", user.id,
                           sessions_ended=ended)
        await notifications.notify(rt, db, user, "account.password_reset", actor=actor)
        asks_code = bool(await login.login_methods(rt, db, user))
        await db.commit()
    return asks_code
