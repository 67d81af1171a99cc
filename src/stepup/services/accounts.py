"""Accounts: sign-up, the profile (``/me``), and the PIN.

Signing up sends the message that verifies the account e-mail
(services/email_verification.py).

Sign-ups are counted per client network (IPv4 /24, IPv6 /64) in fixed hourly windows in
the database, before any password is hashed: a script creating accounts to send codes
from (SMS pumping) is refused at no cost to the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from stepup.domain.agents import network_of
from stepup.domain.clock import hour_window
from stepup.domain.codes import check_password, check_pin
from stepup.domain.errors import EmailTaken, SignupLimitReached, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit, email_verification
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store import queries
from stepup.store.models import User

LANGUAGES = ("en", "ru")


def normalise_email(raw: str, field: str = "email") -> str:
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"The e-mail address is not valid: {exc}", field=field,
                               situation="email") from exc
    # Mailboxes are case-insensitive in practice; one account per address however typed.
    return info.normalized.lower()


@dataclass
class Profile:
    id: str
    email: str
    language: str
    verification_grade: int
    email_verified: bool
    phone_verified: bool


def profile(user: User) -> Profile:
    return Profile(id=user.id, email=user.email, language=user.language,
                   verification_grade=user.verification_grade,
                   email_verified=user.email_verified, phone_verified=user.phone_verified)


async def create_account(rt: Runtime, actor: Actor, *, email: str, password: str, pin: str,
                         language: str = "en") -> User:
    email = normalise_email(email)
    check_password(password, email=email, min_length=rt.settings.password_min_length,
                   max_length=rt.settings.password_max_length,
                   context=rt.settings.password_context)
    check_pin(pin)
    if language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                               field="language")
    await _count_signup(rt, actor)
    password_hash = await run_cpu(rt.hasher.hash_password, password)
    pin_hash = await run_cpu(rt.hasher.hash_password, pin)
    user = User(id=new_id(), email=email, password_hash=password_hash, pin_hash=pin_hash,
                language=language, email_verified=False, phone_verified=False,
                verification_grade=0, created_at=rt.clock.now())
    async with rt.db() as db:
        db.add(user)
        try:
            await db.flush()
        except IntegrityError as exc:
            raise EmailTaken("An account with this e-mail address already exists.",
                           field="email") from exc
        await audit.record(db, rt.clock, actor, "account.created", user.id)
        await db.commit()
    # The address is verified with the code or the link of this message (after the
    # commit: sending takes time, and a failed send must not undo the account).
    await email_verification.send_at_signup(rt, actor, user)
    return user


async def _count_signup(rt: Runtime, actor: Actor) -> None:
    """Count a sign-up from the actor's network; raise SignupLimitReached over the limit.

    Its own short transaction, committed before the hashing: no lock is held while
    argon2 runs, and a refusal (rolled back) neither counts nor hashes anything.
    """
    limit = rt.settings.signups_per_ip_per_hour
    network = network_of(actor.ip)
    if not limit or network is None:
        return
    window, retry = hour_window(rt.clock.now())
    async with rt.db() as db:
        if await queries.rate_hit(db, f"signup-net:{network}", window) > limit:
            raise SignupLimitReached("Too many accounts were created from your network this "
                                     "hour: please try again later.",
                                     retry_after=retry)
        await db.commit()
