"""API keys for relying applications (role ``app``) and support staff (``support``).

The key is shown once; only its SHA-256 is stored. Keys are revocable and record their
last use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import (
    ApiQuotaExceeded,
    Forbidden,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from stepup.domain.hashing import new_id, new_token
from stepup.services import apps, audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.db import rollback_to, savepoint
from stepup.store.models import ApiKey

ROLES = ("app", "support")
# What an app key may do; a key created without scopes may do all of it.
SCOPES = ("users", "methods", "verify", "operations")
PREFIX = "sk_"
# Recording last use on every call would make every call a write; a minute is enough.
TOUCH_EVERY = timedelta(seconds=60)


async def create(rt: Runtime, name: str, role: str, actor: Actor, *,
                 scopes: list[str] | None = None, rate_per_minute: int = 6000,
                 app: str | None = None) -> tuple[ApiKey, str]:
    """A new key, shown once. A key of role ``app`` belongs to the app named ``app``
    (``default`` when none is named); a support key belongs to none."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if role != "app" and app is not None:
        raise ValidationFailed("Only keys of role app belong to an app.", field="app")
    unknown = set(scopes or []) - set(SCOPES)
    if unknown:
        raise ValidationFailed(f"unknown scope(s): {', '.join(sorted(unknown))}; "
                               f"choose from {', '.join(SCOPES)}", field="scopes")
    if rate_per_minute < 1:
        raise ValidationFailed("the rate must be at least 1 per minute", field="rate")
    app_id = (await apps.for_new_key(rt, actor, app)).id if role == "app" else None
    token = f"{PREFIX}{role}_{new_token()}"
    row = ApiKey(id=new_id()[:16], name=name[:100], role=role, app_id=app_id,
                 key_hash=rt.hasher.token_hash(token), scopes=sorted(set(scopes or [])),
                 rate_per_minute=rate_per_minute, created_at=rt.clock.now(),
                 last_used_at=None, revoked_at=None)
    async with rt.db() as db:
        db.add(row)
        await audit.record(db, rt.clock, actor, "apikey.created", None, key=row.id, role=role,
                           name=row.name, app=app_id)
        await db.commit()
    return row, token


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


@dataclass(frozen=True)
class Quota:
    """The key's calls per minute: its limit, what is left, and seconds to the reset
    (the IETF RateLimit headers)."""

    limit: int
    remaining: int
    reset: int


@dataclass(frozen=True)
class Authenticated:
    key: ApiKey
    quota: Quota
    #: The user the call is about belongs to the key's app (False for a user of another
    #: app and for an id that does not exist: the caller answers both alike).
    owns_user: bool = True


async def authenticate(rt: Runtime, token: str, role: str, scope: str | None = None, *,
                       user_id: str | None = None) -> Authenticated:
    """The key behind ``token``, counted against its rate (ApiQuotaExceeded past it).
    ``user_id``: the user the call is about, looked up with the key (one query).

    Nothing about a key is cached between calls: a revoked key, a changed rate or scope
    holds from the next call on, in every worker."""
    async with rt.db() as db:
        auth = await _check_and_count(rt, db, token, role, scope, user_id)
        await db.commit()
        return auth


@dataclass(frozen=True)
class Held:
    """A key checked and counted in a transaction that is still open (``held``)."""

    auth: Authenticated
    #: The open transaction holding the count, for the call's own work to join and
    #: commit; None where the count was committed at once (PostgreSQL).
    db: AsyncSession | None


# The point in a held transaction just after the key's count (a SQLite savepoint).
_COUNTED = "stepup_key_counted"


@asynccontextmanager
async def held(rt: Runtime, token: str, role: str, scope: str | None = None, *,
               user_id: str | None = None) -> AsyncIterator[Held]:
    """``authenticate``, with the count left in an open transaction that the call's own
    work joins: one transaction per call instead of two (the key's, then the work's).

    The count is kept whatever happens next. The call's work commits it along with its
    own writes (its success, or a failure it records); if the call ends with the
    transaction still open (an error before it committed anything), what it wrote after
    the count is rolled back to a savepoint taken just after it, and the count alone is
    committed, as ``authenticate`` would have. A refused key or an exceeded rate is
    raised before anything is yielded, with nothing kept, as there.

    SQLite only, where one writer at a time holds the database anyway (``BEGIN
    IMMEDIATE``). On PostgreSQL the count commits at once and ``db`` is None: an upsert
    locks the key's counter row until commit, and holding it across a verification
    would queue every call of the key behind the one before."""
    async with rt.db() as db:
        auth = await _check_and_count(rt, db, token, role, scope, user_id)
        if not await savepoint(db, _COUNTED):
            await db.commit()
            yield Held(auth, None)
            return
        counted = db.get_transaction()
        try:
            yield Held(auth, db)
        finally:
            if db.in_transaction():
                if db.get_transaction() is counted:
                    await rollback_to(db, _COUNTED)
                    await db.commit()
                else:  # the count was committed already, with the call's earlier work
                    await db.rollback()


async def _check_and_count(rt: Runtime, db: AsyncSession, token: str, role: str,
                           scope: str | None, user_id: str | None) -> Authenticated:
    """The key checked and its call counted in ``db``'s transaction, not committed."""
    found = await queries.get_api_key_and_owner(db, rt.hasher.token_hash(token), user_id)
    if found is None or found[0].revoked_at is not None:
        raise NotAuthenticated("This API key is not valid.")
    row, owner = found
    if row.role != role:
        raise NotAuthenticated(f"This call needs an API key of role '{role}'.")
    if scope and row.scopes and scope not in row.scopes:
        raise Forbidden(f"This API key may not use '{scope}' calls.")
    now = rt.clock.now()
    window = now.replace(second=0, microsecond=0)
    reset = max(1, 60 - now.second)
    # Counted before compared, so racing calls cannot slip past the limit.
    used = await queries.rate_hit(db, f"apikey:{row.id}", window)
    quota = Quota(row.rate_per_minute, max(0, row.rate_per_minute - used), reset)
    if used > quota.limit:
        await db.rollback()  # the count of a refused call is not kept
        raise ApiQuotaExceeded("This API key made too many calls: slow down.",
                               limit=quota.limit, retry_after=reset)
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        await queries.touch_api_key(db, row, now)
    return Authenticated(row, quota, user_id is None or owner == row.app_id)


async def list_keys(rt: Runtime) -> Sequence[ApiKey]:
    async with rt.db() as db:
        return await queries.list_api_keys(db)


async def revoke(rt: Runtime, key_id: str, actor: Actor) -> None:
    async with rt.db() as db:
        if not await queries.revoke_api_key(db, key_id, rt.clock.now()):
            raise NotFound("No active API key with this id.")
        await audit.record(db, rt.clock, actor, "apikey.revoked", None, key=key_id)
        await db.commit()
