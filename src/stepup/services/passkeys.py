"""Several passkeys on one account: adding one more, removing one.

Adding takes the PIN and the new passkey, as enabling did; removing takes an answer
from any passkey of the account, like a switch. Removing the last one disables the
method. Each change is audited, told to the user, and forgets remembered devices, like
any change to the methods.
"""

from __future__ import annotations

from stepup.domain import refusals
from stepup.domain.errors import NotFound, ValidationFailed
from stepup.domain.policy import Purpose
from stepup.methods import registry
from stepup.methods.base import HoldsSeveralCredentials, MethodView, PasskeyOptions
from stepup.services import audit, methods
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.services.verification import check_code, check_pin
from stepup.store import queries


def _method() -> HoldsSeveralCredentials:
    """The method that holds several credentials (passkeys): it declares the ability."""
    method = next((m for m in registry.available()
                   if isinstance(m, HoldsSeveralCredentials)), None)
    if method is None:
        raise NotFound("There is no method that holds several credentials.")
    return method


async def begin_add(rt: Runtime, actor: Actor, user_id: str, pin: str | None, *,
                    on_behalf: bool = False) -> PasskeyOptions:
    """The creation options for one more passkey, once the PIN is right. A portal acting
    for the user (API key of role app) has authenticated the user and may omit it."""
    method = _method()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if pin is not None or not on_behalf:
            await check_pin(rt, db, actor, user, pin or "", method=method.type)
        await methods.enabled_row(db, user, method.type)
        body = await method.begin_add(rt.method_context(db, actor), user)
        await db.commit()
        return body


NAME_MAX = 60


def clean_name(name: str) -> str:
    """A passkey's name as the user typed it: 1 to 60 printable characters."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ValidationFailed(f"A passkey's name is 1 to {NAME_MAX} printable characters.",
                               field="name")
    return name


async def finish_add(rt: Runtime, actor: Actor, user_id: str, credential: str,
                     name: str | None = None) -> MethodView:
    """Store the new passkey the browser made; ``name`` it, or it is "Passkey N"."""
    name = clean_name(name) if name else None
    method = _method()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await methods.enabled_row(db, user, method.type)
        verified = await check_code(rt, db, actor, user, row, credential,
                                    method.add_purpose)
        passkey_id = str(verified.notes["passkey"])
        if name:
            await queries.rename_passkey(db, user.id, passkey_id, name)
        await methods.changed(rt, db, actor, "passkey.added", user, method=method.type,
                              passkey=passkey_id, name=name or verified.notes["passkey_name"])
        await db.commit()
        return await methods.view(rt, db, user, method.type)


async def remove(rt: Runtime, actor: Actor, user_id: str, passkey_id: str, code: str
                 ) -> MethodView:
    """Remove one passkey, with an answer from any of them; the last one disables.

    The method row is locked first, so two removals at once cannot leave an enabled
    method with no passkey."""
    method = _method()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await methods.enabled_row(db, user, method.type, lock=True)
        passkeys = {pk.id: pk for pk in await queries.list_passkeys(db, user.id)}
        # Refused, the page lists the passkeys as read here, not read a second time.
        before = await registry.get(method.type).describe(rt.method_context(db), user, row)
        with refusals.keeping(lambda: before):
            if passkey_id not in passkeys:
                raise NotFound("This account has no such passkey.")
            if len(passkeys) == 1:
                methods.ensure_may_disable(rt, user, method.type)
            await check_code(rt, db, actor, user, row, code, Purpose.manage(method.type))
        if len(passkeys) == 1:
            await method.disable(rt.method_context(db), user, row)
            await methods.changed(rt, db, actor, "method.disabled", user, method=method.type)
        else:
            await queries.delete_passkey(db, passkey_id)
            await methods.changed(rt, db, actor, "passkey.removed", user, method=method.type,
                                  passkey=passkey_id, name=passkeys[passkey_id].name)
        await db.commit()
        return await methods.view(rt, db, user, method.type)


async def rename(rt: Runtime, actor: Actor, user_id: str, passkey_id: str, name: str
                 ) -> MethodView:
    """A new name, so the user can tell their passkeys apart; audited, not notified (it
    changes no protection)."""
    name = clean_name(name)
    method = _method()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if not await queries.rename_passkey(db, user.id, passkey_id, name):
            raise NotFound("This account has no such passkey.")
        await audit.record(db, rt.clock, actor, "passkey.renamed", user.id, method=method.type,
                           passkey=passkey_id, name=name)
        await db.commit()
        return await methods.view(rt, db, user, method.type)
