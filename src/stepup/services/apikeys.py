"""API keys for relying applications (role ``app``) and support staff (``support``).

The key is shown once; only its SHA-256 is stored. Keys are revocable and record their
last use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from stepup.domain.errors import (
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from stepup.domain.hashing import new_id, new_token
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import ApiKey

ROLES = ("app", "support")
# What an app key may do; a key created without scopes may do all of it.
SCOPES = ("users", "methods", "verify", "operations")
PREFIX = "sk_"
# Recording last use on every call would make every call a write; a minute is enough.
TOUCH_EVERY = timedelta(seconds=60)


async def create(rt: Runtime, name: str, role: str, actor: Actor, *,
                 scopes: list[str] | None = None, rate_per_minute: int = 6000
                 ) -> tuple[ApiKey, str]:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    unknown = set(scopes or []) - set(SCOPES)
    if unknown:
        raise ValidationFailed(f"unknown scope(s): {', '.join(sorted(unknown))}; "
                               f"choose from {', '.join(SCOPES)}", field="scopes")
    if rate_per_minute < 1:
        raise ValidationFailed("the rate must be at least 1 per minute", field="rate")
    token = f"{PREFIX}{role}_{new_token()}"
    row = ApiKey(id=new_id()[:16], name=name[:100], role=role,
                 key_hash=rt.hasher.token_hash(token), scopes=sorted(set(scopes or [])),
                 rate_per_minute=rate_per_minute, created_at=rt.clock.now(),
                 last_used_at=None, revoked_at=None)
    async with rt.db() as db:
        db.add(row)
        await audit.record(db, rt.clock, actor, "apikey.created", None, key=row.id, role=role,
                           name=row.name)
        await db.commit()
    return row, token


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


async def authenticate(rt: Runtime, token: str, role: str, scope: str | None = None
                       ) -> ApiKey:
    async with rt.db() as db:
        row = await queries.get_api_key_by_hash(db, rt.hasher.token_hash(token))
        if row is None or row.revoked_at is not None:
            raise NotAuthenticated("This API key is not valid.")
        if row.role != role:
            raise NotAuthenticated(f"This call needs an API key of role '{role}'.")
        if scope and row.scopes and scope not in row.scopes:
            raise Forbidden(f"This API key may not use '{scope}' calls.")
        now = rt.clock.now()
        window = now.replace(second=0, microsecond=0)
        # Counted before compared, so racing calls cannot slip past the limit.
        used = await queries.rate_hit(db, f"apikey:{row.id}", window)
        if used > row.rate_per_minute:
            await db.rollback()
            raise RateLimited("This API key made too many calls: slow down.",
                              retry_after=max(1, 60 - now.second))
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            await queries.touch_api_key(db, row, now)
        await db.commit()
        return row


async def list_keys(rt: Runtime) -> Sequence[ApiKey]:
    async with rt.db() as db:
        return await queries.list_api_keys(db)


async def revoke(rt: Runtime, key_id: str, actor: Actor) -> None:
    async with rt.db() as db:
        if not await queries.revoke_api_key(db, key_id, rt.clock.now()):
            raise NotFound("No active API key with this id.")
        await audit.record(db, rt.clock, actor, "apikey.revoked", None, key=key_id)
        await db.commit()
