"""Accounts: sign-up, the profile (``/me``), and the PIN."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from stepup.domain.codes import check_password, check_pin
from stepup.domain.errors import EmailTaken, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store.models import User

LANGUAGES = ("en", "ru")


def normalise_email(raw: str, field: str = "email") -> str:
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"The e-mail address is not valid: {exc}", field=field) from exc
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
                   max_length=rt.settings.password_max_length)
    check_pin(pin)
    if language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                               field="language")
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
    return user
