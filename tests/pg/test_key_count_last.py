"""On PostgreSQL a verify counts its API key's call last, inside the verification's own
COMMIT (services/apikeys.py, ``held``). When racing calls of the key used up its rate
while the verification ran, the count lands over the rate and the whole verification is
rolled back: the answer is the 429 of an exceeded rate, and nothing changed."""

from __future__ import annotations

import asyncio

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.test_headless import enrol_totp, new_user, verify

ACTOR = Actor(name="t")


async def _until_a_call_waits_for_a_lock(runtime: Runtime) -> None:
    for _ in range(1000):
        # A transaction per look: one sees the activity as of its first look.
        async with runtime.read() as db:
            waiting = (await db.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the verify never waited for the racing call's count")


async def test_a_count_that_lands_over_the_rate_undoes_the_verification(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    _row, admin = await apikeys.create(runtime, "portal", "app", ACTOR)
    uid = await new_user(client, admin)
    secret = await enrol_totp(client, admin, uid, clock)
    clock.advance(60 - clock.now().second)  # a minute of our own
    row, key = await apikeys.create(runtime, "checker", "app", ACTOR, scopes=["verify"],
                                    rate_per_minute=1)
    window = clock.now().replace(second=0, microsecond=0)
    code = pyotp.TOTP(secret).at(clock.now())
    async with runtime.db() as racing:
        # Another call of the key, counted and not committed yet: the verify reads a
        # count of 0, does its work, and its own count waits for this one.
        await queries.rate_hit(racing, f"apikey:{row.id}", window)
        call = asyncio.create_task(verify(client, key, uid, "totp", code))
        await _until_a_call_waits_for_a_lock(runtime)
        # The count is the verification's last statement: its work is done, and the
        # user's audit chain is held by it meanwhile.
        async with runtime.db() as probe:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await probe.execute(text("SELECT 1 FROM users WHERE id = :u "
                                         "FOR UPDATE NOWAIT"), {"u": uid})
        await racing.commit()
    refused = await call
    body = problem(refused, 429, "api_quota_exceeded")

    # Exactly what a call refused up front is answered.
    again = await verify(client, key, uid, "totp", code)
    assert problem(again, 429, "api_quota_exceeded") == body
    for name in ("RateLimit", "RateLimit-Policy", "Retry-After"):
        assert refused.headers[name] == again.headers[name], name
    assert refused.headers["RateLimit"].startswith('"key";r=0;')
    assert refused.headers["RateLimit-Policy"] == '"key";q=1;w=60'

    async with runtime.read() as db:
        # The racing call's count alone: refused calls are not kept.
        assert await queries.rate_value(db, f"apikey:{row.id}", window) == 1
        events = (await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.created_at >= window))).scalar_one()
    assert events == 0  # no audit row of the refused verification
    # Its time step was not spent: the same code still works, once.
    r = await verify(client, admin, uid, "totp", code)
    assert r.status_code == 200, r.text
    problem(await verify(client, admin, uid, "totp", code), 409, "code_already_used")


async def test_a_failure_over_the_rate_is_not_recorded(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """A wrong code whose count lands over the rate: no failure counted towards a lock,
    no audit row, and the answer is the 429."""
    _row, admin = await apikeys.create(runtime, "portal", "app", ACTOR)
    uid = await new_user(client, admin)
    await enrol_totp(client, admin, uid, clock)
    clock.advance(60 - clock.now().second)
    row, key = await apikeys.create(runtime, "checker", "app", ACTOR, rate_per_minute=1)
    window = clock.now().replace(second=0, microsecond=0)
    async with runtime.db() as racing:
        await queries.rate_hit(racing, f"apikey:{row.id}", window)
        call = asyncio.create_task(verify(client, key, uid, "totp", "000000"))
        await _until_a_call_waits_for_a_lock(runtime)
        await racing.commit()
    problem(await call, 429, "api_quota_exceeded")
    async with runtime.read() as db:
        failed = (await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.event == "code.failed"))).scalar_one()
    assert failed == 0
    # The fifth wrong code locks the method (tests/api/test_headless.py): had the refused
    # one counted, the fourth here would.
    for _ in range(4):
        problem(await verify(client, admin, uid, "totp", "000000"), 400, "invalid_code")
    problem(await verify(client, admin, uid, "totp", "000001"), 423, "method_locked")
