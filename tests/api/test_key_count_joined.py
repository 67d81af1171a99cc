"""The integration verify counts its API key's call in the verification's own transaction
(``apikeys.held``): every answer still counts exactly once, a refused call not at all, and
what a call wrote after the count is kept only if the call committed it."""

from __future__ import annotations

import httpx
import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import ApiQuotaExceeded
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import ApiKey, AuditEvent
from tests.api.helpers import problem
from tests.api.test_headless import enrol_totp, h, new_user, verify


async def _count(runtime: Runtime, key_id: str, clock: FrozenClock) -> int:
    async with runtime.read() as db:
        return await queries.rate_value(db, f"apikey:{key_id}",
                                        clock.now().replace(second=0, microsecond=0))


async def user_and_checker(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
                           *, rate: int) -> tuple[str, str, ApiKey, str]:
    """A user with an authenticator app, a minute of the clock's own, and a verify-only
    key of ``rate`` calls a minute: (user id, TOTP secret, the key's row, the key)."""
    _row, admin = await apikeys.create(runtime, "portal", "app", Actor(name="t"))
    uid = await new_user(client, admin)
    secret = await enrol_totp(client, admin, uid, clock)
    clock.advance(60 - clock.now().second)  # a minute of our own
    row, key = await apikeys.create(runtime, "checker", "app", Actor(name="t"),
                                    scopes=["verify"], rate_per_minute=rate)
    return uid, secret, row, key


async def test_every_answer_of_verify_counts_once(client: httpx.AsyncClient, runtime: Runtime,
                                                  clock: FrozenClock) -> None:
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=8)
    url = f"/api/v1/users/{uid}/verify"
    good = pyotp.TOTP(secret).at(clock.now())
    answers = [
        (await client.post(url, json={"method": "totp"}, headers=h(key)), 422),  # body
        (await verify(client, key, "0" * 32, "totp", "123456"), 404),  # no such user
        (await verify(client, key, uid, "sms", "123456"), 409),  # not enabled
        (await verify(client, key, uid, "totp", "000000"), 400),  # wrong code
        (await verify(client, key, uid, "totp", good,
                      context={"StepUp-End-User-IP": "not an address"}), 422),  # header
        (await verify(client, key, uid, "totp", good), 200),
        (await verify(client, key, uid, "totp", good), 409),  # the same code again
    ]
    assert [r.status_code for r, _ in answers] == [status for _, status in answers], \
        [r.text for r, _ in answers]
    assert await _count(runtime, row.id, clock) == 7
    assert answers[-2][0].headers["RateLimit"].startswith('"key";r=2;')
    problem(await verify(client, key, uid, "totp", "123456"), 400, "invalid_code")  # 8th
    r = await verify(client, key, uid, "totp", "123456")
    problem(r, 429, "api_quota_exceeded")
    assert await _count(runtime, row.id, clock) == 8  # the refused call is not kept
    async with runtime.read() as db:
        events = (await db.execute(select(AuditEvent.event, func.count())
                                   .where(AuditEvent.user_id == uid)
                                   .group_by(AuditEvent.event))).all()
    # The header refused before the check: its right code was never looked at, and the
    # success after it is the one verification of that code.
    assert dict(events)["code.verified"] == 1
    assert dict(events)["code.replayed"] == 1


async def test_an_error_keeps_the_count_and_undoes_the_rest(runtime: Runtime,
                                                            clock: FrozenClock) -> None:
    row, key = await apikeys.create(runtime, "checker", "app", Actor(name="t"))
    window = clock.now().replace(second=0, microsecond=0)
    with pytest.raises(RuntimeError, match="after the count"):
        async with apikeys.held(runtime, key, "app", "verify") as held:
            if held.db is not None:  # SQLite: the work joins the count's transaction
                await queries.rate_hit(held.db, "other", window)
            else:
                async with runtime.db() as db:
                    await queries.rate_hit(db, "other", window)
            raise RuntimeError("after the count, before any commit")
    assert await _count(runtime, row.id, clock) == 1
    async with runtime.read() as db:
        assert await queries.rate_value(db, "other", window) == 0

    # Work the call committed is kept with the count; a later uncommitted one is not.
    async def commit_then_fail(db: AsyncSession) -> None:
        await queries.rate_hit(db, "other", window)
        await db.commit()
        await queries.rate_hit(db, "other", window)
        raise RuntimeError("later")

    with pytest.raises(RuntimeError, match="later"):
        async with apikeys.held(runtime, key, "app", "verify") as held:
            if held.db is not None:
                await commit_then_fail(held.db)
            async with runtime.db() as db:
                await commit_then_fail(db)
    assert await _count(runtime, row.id, clock) == 2
    async with runtime.read() as db:
        assert await queries.rate_value(db, "other", window) == 1

    # Past the rate nothing is yielded and nothing kept.
    _row, slow = await apikeys.create(runtime, "slow", "app", Actor(name="t"),
                                      rate_per_minute=1)
    async with apikeys.held(runtime, slow, "app", "verify"):
        pass
    with pytest.raises(ApiQuotaExceeded):
        async with apikeys.held(runtime, slow, "app", "verify"):
            raise AssertionError("a refused call does no work")
    assert await _count(runtime, _row.id, clock) == 1
