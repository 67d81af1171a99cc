"""Users as the portal that embeds StepUp sees them (the integration API).

A portal's key creates and finds users only in its own app: the same e-mail or external
id in another app is another person.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from stepup.domain.codes import check_password, check_pin
from stepup.domain.errors import StateChanged, UserConflict, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit
from stepup.services.accounts import LANGUAGES, normalise_email
from stepup.services.runtime import Actor, Runtime, run_cpu, user_or_not_found
from stepup.store import apps as store
from stepup.store.models import PORTAL_APP_ID, User

_CHANGE = "Change it with PATCH /users/{id}; POST /users never changes a user."


async def create_or_fetch(rt: Runtime, actor: Actor, app_id: str, *, email: str,
                          external_id: str | None, language: str | None = None,
                          pin: str | None = None, password: str | None = None,
                          email_verified: bool = False) -> tuple[User, bool]:
    """Returns (user, created). The user with this external id (or, without one, this
    e-mail) is answered as it is, so the call is safe to repeat; details that differ
    from it are a conflict rather than silently ignored, and an e-mail and an external
    id of two different users are a conflict, never either of them.

    ``email_verified``: the portal vouches for the address (it verified it itself); its
    users have no StepUp page on which to follow a verification link."""
    email = normalise_email(email)
    if language is not None and language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                               field="language")
    if pin is not None:
        check_pin(pin)
    if password is not None:
        if app_id != PORTAL_APP_ID:
            # StepUp's own login pages are the app "portal"'s: nobody else logs in there.
            raise ValidationFailed("Only users of the app 'portal' log in to StepUp's own "
                                   "pages: a password is for keys of that app.",
                                   field="password")
        check_password(password, email=email, min_length=rt.settings.password_min_length,
                       max_length=rt.settings.password_max_length,
                       context=rt.settings.password_context)
    async with rt.db() as db:
        by_id = (await store.user_by_external_id(db, app_id, external_id)
                 if external_id else None)
        by_email = await store.user_by_email(db, app_id, email)
        existing = _one_user(by_id, by_email, email, external_id, language)
        if existing is not None and external_id and existing.external_id is None:
            # A user the portal made before it had ids for them: link it now.
            existing.external_id = external_id
            await audit.record(db, rt.clock, actor, "account.updated", existing.id,
                               fields=["external_id"])
            await db.commit()
    if existing is not None:
        if pin is not None and not await _same_secret(rt, existing.pin_hash, pin):
            raise UserConflict(f"This user has another PIN. {_CHANGE}", field="pin")
        if password is not None and not await _same_secret(rt, existing.password_hash,
                                                           password):
            raise UserConflict("This user has another password.", field="password")
        return existing, False
    pin_hash = await run_cpu(rt.hasher.hash_password, pin) if pin else None
    password_hash = await run_cpu(rt.hasher.hash_password, password) if password else None
    user = User(id=new_id(), app_id=app_id, email=email, external_id=external_id,
                language=language or "en", password_hash=password_hash, pin_hash=pin_hash,
                email_verified=email_verified, phone_verified=False, verification_grade=0,
                created_at=rt.clock.now())
    async with rt.db() as db:
        db.add(user)
        try:
            await db.flush()
        except IntegrityError as exc:
            raise StateChanged("This user was created meanwhile: send the call again to "
                               "fetch it.") from exc
        await audit.record(db, rt.clock, actor, "account.created", user.id, via="api")
        if email_verified:
            await audit.record(db, rt.clock, actor, "account.email_verified", user.id,
                               via="app")
        await db.commit()
    return user, True


def _one_user(by_id: User | None, by_email: User | None, email: str,
              external_id: str | None, language: str | None) -> User | None:
    if by_id is not None and by_email is not None and by_id.id != by_email.id:
        raise UserConflict("This e-mail and this external id belong to two different users.",
                           field="external_id")
    if by_id is not None and by_id.email != email:
        raise UserConflict(f"This external id belongs to a user with another e-mail. "
                           f"{_CHANGE}", field="email")
    if by_email is not None and external_id and by_email.external_id not in (None,
                                                                             external_id):
        raise UserConflict("This e-mail belongs to a user with another external id.",
                           field="email")
    found = by_id or by_email
    if found is not None and language is not None and found.language != language:
        raise UserConflict(f"This user has another language. {_CHANGE}", field="language")
    return found


async def _same_secret(rt: Runtime, stored: str | None, given: str) -> bool:
    if not stored:
        return False
    return bool(await run_cpu(rt.hasher.verify_password, stored, given))


async def get(rt: Runtime, user_id: str) -> User:
    async with rt.db() as db:
        return await user_or_not_found(db, user_id)
