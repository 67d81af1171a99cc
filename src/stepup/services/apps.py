"""Apps: the portals that embed StepUp, each a tenant with its own users and keys.

``portal`` is built in (StepUp's own pages); ``default`` is made on first use for keys
created without ``--app``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import Conflict, NotFound, ValidationFailed
from stepup.domain.hashing import new_id
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import apps as store
from stepup.store.models import PORTAL_APP_ID, App

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


async def named(db: AsyncSession, name: str) -> App:
    row = await store.get_app_by_name(db, name)
    if row is None:
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
        return await create(rt, actor, DEFAULT_APP)
    except Conflict:  # made meanwhile by another call
        async with rt.db() as db:
            return await named(db, DEFAULT_APP)


async def list_all(rt: Runtime) -> Sequence[App]:
    async with rt.db() as db:
        return await store.list_apps(db)


async def get(rt: Runtime, app_id: str) -> App:
    async with rt.db() as db:
        row = await store.get_app(db, app_id)
        if row is None:
            raise NotFound("No such app.")
        return row


def is_portal(app_id: str) -> bool:
    return app_id == PORTAL_APP_ID
