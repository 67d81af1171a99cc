"""What support staff may do to an account: the CLI and the support console share it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import NotFound
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE, method_scope
from stepup.services import audit, ratelimit
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime
from stepup.store import apps as apps_store
from stepup.store import queries
from stepup.store.models import PORTAL_APP_ID, STAFF_APP_ID, User


async def unlock(rt: Runtime, actor: Actor, email: str, what: str = "all", *,
                 app: str = PORTAL_APP_ID) -> list[str]:
    """Lift the account lock, the PIN lock, a method lock or (``password``) the password
    throttle of the user with this e-mail in the app named ``app`` (``all``: every one of
    them); returns the scopes cleared."""
    async with rt.db() as db:
        owner = await apps_store.get_app_by_name(db, app)
        user = (await queries.get_user_by_email(db, normalise_email(email), owner.id)
                if owner is not None else None)
        if user is None:
            raise NotFound(f"No account with this e-mail address in the app '{app}'.")
        return await _unlock(rt, db, actor, user, what)


async def unlock_user(rt: Runtime, actor: Actor, user_id: str, what: str = "all") -> list[str]:
    """As :func:`unlock`, for an account found by id (the support console)."""
    async with rt.db() as db:
        user = await queries.get_user(db, user_id)
        if user is None:
            raise NotFound("No such user.")
        return await _unlock(rt, db, actor, user, what)


# The ``what`` that clears the password counters of the account's e-mail (from every
# network and remembered device); ``all`` clears them too.
LOGIN_THROTTLE = "password"


async def _unlock(rt: Runtime, db: AsyncSession, actor: Actor, user: User, what: str
                  ) -> list[str]:
    if what == "all":
        scopes = [ACCOUNT_SCOPE, PIN_SCOPE] + [
            method_scope(m.type) for m in await queries.list_methods(db, user.id)]
    elif what in (ACCOUNT_SCOPE, PIN_SCOPE, LOGIN_THROTTLE):
        scopes = [what]
    else:
        scopes = [method_scope(what)]
    for scope in scopes:
        if scope != LOGIN_THROTTLE:
            await ratelimit.unlock(db, user.id, scope)
    # Only the built-in apps' users (StepUp's pages, the staff) log in with a password;
    # the counters are keyed by app and e-mail, so another app's user of the same
    # address must not clear them.
    if what in ("all", LOGIN_THROTTLE) and user.app_id in (PORTAL_APP_ID, STAFF_APP_ID):
        await ratelimit.unlock_password(db, ratelimit.login_name(user.app_id, user.email))
        if what == "all":
            scopes.append(LOGIN_THROTTLE)
    await audit.record(db, rt.clock, actor, "account.unlocked", user.id, scopes=scopes)
    await db.commit()
    return scopes
