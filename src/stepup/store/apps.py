"""Queries about apps (tenants) and the users each one owns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.store.loaded import plain
from stepup.store.models import App, User
from stepup.store.queries import core


async def get_app(db: AsyncSession, app_id: str) -> App | None:
    return await db.get(App, app_id)


_apps: Table = App.__table__  # type: ignore[assignment]
_APP = select(_apps).where(_apps.c.id == bindparam("app_id"))


async def read_app(db: AsyncSession, app_id: str) -> App | None:
    """The app, to read only: a plain object outside the session, built from a Core
    row (the ORM's load cost a tenth of a login step, for a row nobody changes here)."""
    row = (await core(db, _APP, {"app_id": app_id})).first()
    return None if row is None else plain(App, row._asdict())


async def get_app_by_name(db: AsyncSession, name: str) -> App | None:
    return (await db.execute(select(App).where(App.name == name))).scalar_one_or_none()


async def list_apps(db: AsyncSession) -> Sequence[App]:
    return (await db.execute(select(App).order_by(App.created_at, App.name))).scalars().all()


async def user_app(db: AsyncSession, user_id: str) -> str | None:
    """The app a user belongs to; None if there is no such user."""
    q = select(User.app_id).where(User.id == user_id)
    return (await db.execute(q)).scalar_one_or_none()


async def user_by_email(db: AsyncSession, app_id: str, email: str) -> User | None:
    q = select(User).where(User.app_id == app_id, User.email == email)
    return (await db.execute(q)).scalar_one_or_none()


async def user_by_external_id(db: AsyncSession, app_id: str, external_id: str) -> User | None:
    q = select(User).where(User.app_id == app_id, User.external_id == external_id)
    return (await db.execute(q)).scalar_one_or_none()


async def users_page(db: AsyncSession, app_id: str, *, after: str | None, limit: int
                     ) -> Sequence[User]:
    """The app's users in id order, ``limit`` of them after the id ``after``."""
    q = select(User).where(User.app_id == app_id)
    if after:
        q = q.where(User.id > after)
    return (await db.execute(q.order_by(User.id).limit(limit))).scalars().all()
