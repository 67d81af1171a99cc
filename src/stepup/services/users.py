"""Users as the portal that embeds StepUp sees them (the integration API)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stepup.domain.codes import check_password, check_pin
from stepup.domain.errors import Conflict, NotFound, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit
from stepup.services.accounts import LANGUAGES, normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu
from stepup.store import queries
from stepup.store.models import User


async def create_or_fetch(rt: Runtime, actor: Actor, *, email: str, external_id: str | None,
                          language: str = "en", password: str | None = None,
                          pin: str | None = None) -> tuple[User, bool]:
    """Returns (user, created). An existing external id or e-mail is fetched, not changed."""
    email = normalise_email(email)
    if language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                               field="language")
    async with rt.db() as db:
        existing = None
        if external_id:
            q = select(User).where(User.external_id == external_id)
            existing = (await db.execute(q)).scalar_one_or_none()
        if existing is None:
            existing = await queries.get_user_by_email(db, email)
            if existing is not None and external_id and existing.external_id not in (
                    None, external_id):
                raise Conflict("This e-mail belongs to a user with another external id.",
                               field="email")
        if existing is not None:
            if external_id and existing.external_id is None:
                existing.external_id = external_id
                await db.commit()
            return existing, False
    if password is not None:
        check_password(password, email=email, min_length=rt.settings.password_min_length,
                       max_length=rt.settings.password_max_length)
    if pin is not None:
        check_pin(pin)
    user = User(id=new_id(), email=email, external_id=external_id, language=language,
                password_hash=await run_cpu(rt.hasher.hash_password, password) if password
                else None,
                pin_hash=await run_cpu(rt.hasher.hash_password, pin) if pin else None,
                email_verified=False, phone_verified=False, verification_grade=0,
                created_at=rt.clock.now())
    async with rt.db() as db:
        db.add(user)
        try:
            await db.flush()
        except IntegrityError as exc:
            raise Conflict("This user was created meanwhile: fetch it again.") from exc
        await audit.record(db, rt.clock, actor, "account.created", user.id, via="api")
        await db.commit()
    return user, True


async def get(rt: Runtime, user_id: str) -> User:
    async with rt.db() as db:
        user = await queries.get_user(db, user_id)
        if user is None:
            raise NotFound("No such user.")
        return user
