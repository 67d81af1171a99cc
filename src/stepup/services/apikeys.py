"""API keys for relying applications (role ``app``) and support staff (``support``).

The key is shown once; only its SHA-256 is stored. Keys are revocable and record their
last use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession

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
from stepup.store import api_keys, queries
from stepup.store.api_keys import CheckRead as CheckRead
from stepup.store.api_keys import ReadAhead as ReadAhead
from stepup.store.db import last_in_commit
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
    """A key checked in a transaction that is still open (``held``), its call counted
    there or to be counted when it commits."""

    auth: Authenticated
    #: The open transaction, for the call's own work to join and commit.
    db: AsyncSession
    #: The check's read asked for with the key (``held``'s ``check``), for its work.
    ahead: ReadAhead | None = None


@asynccontextmanager
async def held(rt: Runtime, token: str, role: str, scope: str | None = None, *,
               user_id: str | None = None,
               on_count: Callable[[Quota], None] | None = None,
               check: CheckRead | None = None) -> AsyncIterator[Held]:
    """``authenticate``, in an open transaction that the call's own work joins and
    commits: one transaction per call instead of two (the key's, then the work's).

    The call is counted once whatever happens next. If the call commits (its success,
    or a failure it records), the count commits with it; if it ends with nothing
    committed (an error first), what it wrote is undone and the count alone committed,
    as ``authenticate`` would have. A refused key or a scope it lacks is raised before
    anything is yielded, with nothing kept, as there.

    The transaction reads first (``Runtime.read_first``): the key is only read (with what
    its window has counted so far: a key already at its rate is refused before any
    work), the call's work runs, and the count (and the key's last use, once a minute)
    run inside its first COMMIT as the last statements (``store.db.last_in_commit``).
    On PostgreSQL the count is an upsert that locks the key's counter row until COMMIT:
    counting first would queue every call of the key behind the one before for the
    whole verification, and here the row is locked for one round trip, the COMMIT's. On
    SQLite the transaction takes the one write lock at its first write, not at its
    BEGIN: the key's read, the check's and the code's comparison run while other
    workers write (bench/README.md, "After round 17"). A verification's audit event,
    its last write, counts the call as it goes on PostgreSQL (``audit.record_last``: one
    round trip fewer, the counter row taken after the user row there and held until the
    COMMIT). On PostgreSQL the key's read goes before any BEGIN (a plain read), and a
    right authenticator-app code whose event is the call's one write is spent, audited
    and counted by one call that is a transaction of its own (store/step_spends.py):
    no BEGIN, no COMMIT. If the count goes over the rate (racing calls took the rest),
    the commit fails with ``ApiQuotaExceeded`` and everything the call wrote is rolled
    back with it: no step spent, no failure counted, no audit row.
    ``on_count``: told the key's quota once the call is counted within the rate.
    ``check``: the first read of the call's work, fetched by the key's read (one
    statement, one round trip on PostgreSQL, instead of two) and handed on as
    ``Held.ahead``; ignored unless it is of user ``user_id``.

    Lock order on PostgreSQL, and why it cannot deadlock: the call's work takes its
    rows first, in the order it takes them without a key (the method row's conditional
    UPDATE, guard rows, the user row of the audit chain: its head's compare-and-set
    UPDATE, or ``FOR UPDATE`` read), then the counter row (at COMMIT, or in the audit
    event's own statement, which counts from the event's RETURNING and so after the
    user row it compares, and not at all if the compare fails: an SMS or e-mail code's
    method row, left to the COMMIT's flush, is then written after the counter, but any
    other writer of that row through a session holds the user row first, as this call
    does), then the key row (the touch), and commits. The counter row of an ``apikey:``
    counter is locked by nothing else than a key's count: here, and in ``authenticate``'s
    own short transaction (the key read, the counter, the key row, COMMIT). Each of them
    takes the counter before the key row and waits for nothing after the key row but its
    COMMIT, so whoever holds the counter or the key row waits for no lock a verification
    holds, and no cycle can close through them. The key row is otherwise locked by
    ``revoke`` (key row, then the global audit chain's advisory lock); a verification
    never takes that lock (its audit rows are its user's chain). Pruning of counters
    deletes windows at least a day old, never the current one."""
    if check is not None and check.user_id != user_id:
        check = None
    async with rt.read_first() as db:
        auth, count, ahead = await _check_and_count_at_commit(
            rt, db, token, role, scope, user_id, on_count, check)
        try:
            yield Held(auth, db, ahead)
        finally:
            await count.settle(db)


def _checked(row: ApiKey | None, role: str, scope: str | None) -> ApiKey:
    """The key, unless it is unknown or revoked, of another role, or lacks ``scope``."""
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("This API key is not valid.")
    if row.role != role:
        raise NotAuthenticated(f"This call needs an API key of role '{role}'.")
    if scope and row.scopes and scope not in row.scopes:
        raise Forbidden(f"This API key may not use '{scope}' calls.")
    return row


# A key's calls are counted in the rate counter "apikey:<key id>".
COUNTER_PREFIX = "apikey:"


def _counter(key: ApiKey) -> str:
    return f"{COUNTER_PREFIX}{key.id}"


def _exceeded(quota: Quota) -> ApiQuotaExceeded:
    return ApiQuotaExceeded("This API key made too many calls: slow down.",
                            limit=quota.limit, retry_after=quota.reset)


def _touch_due(key: ApiKey, now: datetime) -> bool:
    """Whether a call at ``now`` records the key's last use (``TOUCH_EVERY``)."""
    return key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY


def _window(rt: Runtime) -> tuple[datetime, datetime, int]:
    """Now, the start of its minute (the counters' window) and seconds to the next."""
    now = rt.clock.now()
    return now, now.replace(second=0, microsecond=0), max(1, 60 - now.second)


async def _check_and_count(rt: Runtime, db: AsyncSession, token: str, role: str,
                           scope: str | None, user_id: str | None) -> Authenticated:
    """The key checked and its call counted in ``db``'s transaction, not committed."""
    found = await api_keys.read_key(db, rt.hasher.token_hash(token), user_id)
    row = _checked(found.key if found else None, role, scope)
    owner = found.owner if found else None
    now, window, reset = _window(rt)
    # Counted before compared, so racing calls cannot slip past the limit.
    used = await queries.rate_hit(db, _counter(row), window)
    quota = Quota(row.rate_per_minute, max(0, row.rate_per_minute - used), reset)
    if used > quota.limit:
        await db.rollback()  # the count of a refused call is not kept
        raise _exceeded(quota)
    if _touch_due(row, now):
        await api_keys.touch_api_key(db, row, now)
    auth, _ = _authenticated(row, quota, user_id, owner, found)
    return auth


async def _check_and_count_at_commit(rt: Runtime, db: AsyncSession, token: str, role: str,
                                     scope: str | None, user_id: str | None,
                                     on_count: Callable[[Quota], None] | None,
                                     check: CheckRead | None
                                     ) -> tuple[Authenticated, _CountAtCommit,
                                                ReadAhead | None]:
    """The key checked in ``db``'s transaction (a read), and its call set to be counted
    by the transaction's first COMMIT (``held``)."""
    now, window, reset = _window(rt)
    found = await api_keys.read_key(db, rt.hasher.token_hash(token), user_id,
                                    used_in=(COUNTER_PREFIX, window), check=check)
    row = _checked(found.key if found else None, role, scope)
    owner, used = (found.owner, found.used) if found else (None, 0)
    # What the headers say until the count lands: this call counted, no other.
    quota = Quota(row.rate_per_minute, max(0, row.rate_per_minute - used - 1), reset)
    if used >= quota.limit:  # a window's count only grows: this call would be over
        raise _exceeded(quota)
    count = _CountAtCommit(row, now, window, reset, on_count)
    last_in_commit(db, count)
    api_keys.ride(db, count.riding)
    auth, ahead = _authenticated(row, quota, user_id, owner, found)
    return auth, count, ahead


def _authenticated(row: ApiKey, quota: Quota, user_id: str | None, owner: str | None,
                   found: api_keys.KeyRead | None) -> tuple[Authenticated, ReadAhead | None]:
    """The key admitted, and what was read ahead with it, unless the user is another
    app's: the call's work never sees a user its key does not own."""
    owns = user_id is None or owner == row.app_id
    return Authenticated(row, quota, owns), found.ahead if found and owns else None


class _CountAtCommit:
    """A key's call, counted by the first COMMIT of the call's transaction as its last
    statements (``store.db.last_in_commit``), or alone at the end of the call when
    nothing committed (``settle``). The call's last write may have counted it on its
    way (``riding``: a verification's audit event, ``audit.record_last``); the
    COMMIT then only checks the count it got."""

    def __init__(self, key: ApiKey, now: datetime, window: datetime, reset: int,
                 on_count: Callable[[Quota], None] | None) -> None:
        self.key, self.now, self.window, self.reset = key, now, window, reset
        self.on_count = on_count
        self.done = False
        self.riding = api_keys.Riding(_counter(key), window, key.rate_per_minute,
                                      touches=_touch_due(key, now))

    def __call__(self, session: OrmSession) -> None:
        if self.done:  # a later commit of the same session: counted already
            return
        self.done = True
        api_keys.unride(session)
        used = self.riding.used
        if used is None:
            used = api_keys.count_now(session, self.riding.counter, self.window)
        limit = self.key.rate_per_minute
        quota = Quota(limit, max(0, limit - used), self.reset)
        if used > limit:
            # The commit fails: the caller's rollback takes the count with the rest.
            raise _exceeded(quota)
        if self.riding.touches:
            api_keys.touch_now(session, self.key, self.now)
        if self.on_count is not None:
            self.on_count(quota)

    async def settle(self, db: AsyncSession) -> None:
        """At the end of the call: if nothing counted it, undo what it left uncommitted
        and commit the count alone (which may still find the rate exceeded); otherwise
        drop whatever it left open (a refused count, or work after its commit)."""
        if self.done:
            if db.in_transaction():
                await db.rollback()
            return
        if db.in_transaction():
            await db.rollback()
        self.riding.used = None  # a count its last write made was rolled back with it
        await db.commit()  # counts, in a transaction of its own


async def list_keys(rt: Runtime) -> Sequence[ApiKey]:
    async with rt.db() as db:
        return await api_keys.list_api_keys(db)


async def revoke(rt: Runtime, key_id: str, actor: Actor) -> None:
    async with rt.db() as db:
        if not await api_keys.revoke_api_key(db, key_id, rt.clock.now()):
            raise NotFound("No active API key with this id.")
        await audit.record(db, rt.clock, actor, "apikey.revoked", None, key=key_id)
        await db.commit()
