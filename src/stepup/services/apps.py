"""Apps: the portals that embed StepUp, each a tenant with its own users and keys.

``portal`` is built in (StepUp's own pages), and so is ``staff`` (the support staff's
accounts), which is hidden: no key is made for it and it is never configured.
``default`` is made on first use for keys created without ``--app``. ``configure``
changes an app: its name shown to its users, its address, its send budget, its webhook
(URL and signing secret, the secret sealed with the key ring) and whether StepUp sends
its users security notices.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlparse

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import Conflict, NotFound, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit, webhooks
from stepup.services.runtime import Actor, Runtime
from stepup.store import apps as store
from stepup.store.models import PORTAL_APP_ID, STAFF_APP_ID, App

DEFAULT_APP = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not re.match(r"^https?://[^\s/]+", url) or len(url) > 300:
        raise ValidationFailed("The URL must start with https:// (or http://).", field="url")
    return url.rstrip("/")


async def create(rt: Runtime, actor: Actor, name: str, *, display_name: str | None = None,
                 url: str | None = None, sends_per_hour: int | None = None) -> App:
    if not _NAME.match(name):
        raise ValidationFailed("An app name is 1-64 lower-case letters, digits, '-' or '_', "
                               "starting with a letter or digit.", field="name")
    if sends_per_hour is not None and sends_per_hour < 1:
        raise ValidationFailed("The send budget must be at least 1 per hour.",
                               field="sends_per_hour")
    row = App(id=new_id(), name=name, display_name=(display_name or name)[:120],
              url=_check_url(url), sends_per_hour=sends_per_hour, created_at=rt.clock.now())
    async with rt.db() as db:
        db.add(row)
        try:
            await db.flush()
        except IntegrityError as exc:
            raise Conflict(f"An app named '{name}' already exists.", field="name") from exc
        await audit.record(db, rt.clock, actor, "app.created", None, app=row.id, name=name)
        await db.commit()
    return row


WEBHOOK_SECRET_MIN = 16
WEBHOOK_SECRET_MAX = 200


def _check_webhook_url(rt: Runtime, url: str) -> str:
    parsed = urlparse(url)
    schemes = ("https",) if rt.settings.is_production else ("https", "http")
    if (parsed.scheme not in schemes or not parsed.hostname or len(url) > 500
            or any(c.isspace() for c in url)):
        need = "https://" if rt.settings.is_production else "https:// (or http://)"
        raise ValidationFailed(f"The webhook URL must start with {need} and name a host.",
                               field="webhook_url")
    return url


def _check_webhook_secret(secret: str) -> str:
    if not WEBHOOK_SECRET_MIN <= len(secret) <= WEBHOOK_SECRET_MAX or not secret.isprintable() \
            or secret != secret.strip():
        raise ValidationFailed(f"The webhook secret is {WEBHOOK_SECRET_MIN}-"
                               f"{WEBHOOK_SECRET_MAX} printable characters.",
                               field="webhook_secret")
    return secret


async def configure(rt: Runtime, actor: Actor, name: str, *, display_name: str | None = None,
                    url: str | None = None, sends_per_hour: int | None = None,
                    webhook_url: str | None = None, webhook_secret: str | None = None,
                    notices: bool | None = None) -> App:
    """Change what is given (None: unchanged). An empty ``url`` or ``webhook_url`` removes
    it (removing the webhook URL removes its secret: the app's events then go to the
    global URL, if any); ``sends_per_hour`` 0 returns to the setting. Audited as
    ``app.updated`` with the names of the fields changed, never their values."""
    if display_name is not None and not display_name.strip():
        raise ValidationFailed("The display name cannot be empty.", field="display_name")
    if sends_per_hour is not None and sends_per_hour < 0:
        raise ValidationFailed("The send budget must be at least 1 per hour (0: the "
                               "setting).", field="sends_per_hour")
    new_url = _check_url(url) if url else None
    new_hook = _check_webhook_url(rt, webhook_url) if webhook_url else None
    secret = _check_webhook_secret(webhook_secret) if webhook_secret is not None else None
    async with rt.db() as db:
        row = await named(db, name)
        changed: list[str] = []
        if display_name is not None and display_name.strip()[:120] != row.display_name:
            row.display_name = display_name.strip()[:120]
            changed.append("display_name")
        if url is not None and new_url != row.url:
            row.url = new_url
            changed.append("url")
        if sends_per_hour is not None and (sends_per_hour or None) != row.sends_per_hour:
            row.sends_per_hour = sends_per_hour or None
            changed.append("sends_per_hour")
        if webhook_url is not None and new_hook != row.webhook_url:
            row.webhook_url = new_hook
            changed.append("webhook_url")
            if new_hook is None and row.webhook_secret_ct is not None and secret is None:
                row.webhook_secret_kid, row.webhook_secret_ct = None, None
                changed.append("webhook_secret")
        if secret is not None:
            webhooks.seal_secret(rt, row, secret)
            changed.append("webhook_secret")
        if row.webhook_url and row.webhook_secret_ct is None:
            # Unsigned events could be forged by anyone who learns the URL.
            raise ValidationFailed(f"A webhook needs a secret: --webhook-secret (at least "
                                   f"{WEBHOOK_SECRET_MIN} characters).",
                                   field="webhook_secret")
        if notices is not None and notices != row.notices:
            row.notices = notices
            changed.append("notices")
        if changed:
            await audit.record(db, rt.clock, actor, "app.updated", None, app=row.id,
                               name=row.name, fields=changed)
        await db.commit()
        return row


async def named(db: AsyncSession, name: str) -> App:
    row = await store.get_app_by_name(db, name)
    if row is None or row.id == STAFF_APP_ID:  # hidden: no key, no settings of its own
        raise NotFound(f"No app named '{name}': create it with `stepup app create {name}`.")
    return row


async def for_new_key(rt: Runtime, actor: Actor, name: str | None) -> App:
    """The app a new app key belongs to: the one named, or ``default`` (made now if it is
    not there yet)."""
    if name is not None:
        async with rt.db() as db:
            return await named(db, name)
    async with rt.db() as db:
        found = await store.get_app_by_name(db, DEFAULT_APP)
    if found is not None:
        return found
    try:
        # Its users hear from StepUp itself (ISSUER) until the operator names it.
        return await create(rt, actor, DEFAULT_APP, display_name=rt.settings.issuer)
    except Conflict:  # made meanwhile by another call
        async with rt.db() as db:
            return await named(db, DEFAULT_APP)


async def list_all(rt: Runtime) -> Sequence[App]:
    async with rt.db() as db:
        return [a for a in await store.list_apps(db) if a.id != STAFF_APP_ID]


async def get(rt: Runtime, app_id: str) -> App:
    async with rt.db() as db:
        row = await store.get_app(db, app_id)
        if row is None or row.id == STAFF_APP_ID:
            raise NotFound("No such app.")
        return row


def is_portal(app_id: str) -> bool:
    return app_id == PORTAL_APP_ID
