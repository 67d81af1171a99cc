"""What support staff may do to an account: the CLI and the support console share it.

Besides unlocking: the phone number on file, shown in full to a staff member who asks
for it (to call the user back, as the recovery checklist says), each look-up audited
on the account and limited per staff member; and the names of the staff, so the
console's audit rows say who acted instead of an id.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.clock import hour_window
from stepup.domain.errors import NotFound, RateLimited
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE, method_scope
from stepup.methods import registry
from stepup.services import audit, ratelimit
from stepup.services.accounts import normalise_email
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.services.staff import actor_name
from stepup.store import apps as apps_store
from stepup.store import queries
from stepup.store import recovery as staff_store
from stepup.store.models import PORTAL_APP_ID, STAFF_APP_ID, Staff, User
from stepup.store.notices import enabled_method


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
        user = await user_or_not_found(db, user_id)
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


# --- the phone number on file --------------------------------------------------------------

# How many accounts' numbers one staff member may look up in an hour: a day's call-backs
# fit, copying out the customer list does not.
PHONE_LOOKUPS_PER_HOUR = 30


@dataclass(frozen=True)
class PhoneOnFile:
    e164: str  # for a tel: link
    shown: str  # grouped as people read it: +44 7700 900123


def _phone(e164: str) -> PhoneOnFile:
    try:
        number = phonenumbers.parse(e164, None)
        shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        shown = e164
    return PhoneOnFile(e164=e164, shown=shown)


async def phone_on_file(rt: Runtime, actor: Actor, staff: Staff, user_id: str, *,
                        request_id: str | None = None) -> PhoneOnFile | None:
    """The account's phone number on file, in full, for a staff member to call the user
    back: the verified phone its SMS method sends codes to (a code reached it), the
    number the security notices go to. None when there is none — never the number a
    recovery request gave, which whoever filed it chose.

    Every look-up is audited on the account (``support.phone_viewed``, naming the staff
    member, and the recovery request it was looked up for), whether it found a number
    or not; more than ``PHONE_LOOKUPS_PER_HOUR`` in
    an hour by one staff member raise ``RateLimited`` and show nothing."""
    window, retry = hour_window(rt.clock.now())
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id, staff=False)
        if await queries.rate_hit(db, f"support-phone:{staff.id}",
                                  window) > PHONE_LOOKUPS_PER_HOUR:
            await db.rollback()
            raise RateLimited("Too many phone numbers looked up: try again later.",
                              retry_after=retry)
        verifier = registry.phone_verifier()
        row = (await enabled_method(db, user.id, verifier)
               if verifier and user.phone_verified else None)
        phone = rt.destinations.read(row) if row is not None else None
        why = {"request": request_id} if request_id else {}
        await audit.record(db, rt.clock, actor, "support.phone_viewed", user.id,
                           staff=staff.id,
                           found=phone is not None, **why)
        await db.commit()
        return _phone(phone) if phone else None


# --- who the staff are ---------------------------------------------------------------------


async def staff_by_actor(rt: Runtime) -> dict[str, Staff]:
    """Every staff member (disabled ones too: their past acts stay theirs), by the actor
    name their acts are audited under (``staff:<id>``)."""
    async with rt.read() as db:
        return {actor_name(s): s for s in await staff_store.list_staff(db)}
