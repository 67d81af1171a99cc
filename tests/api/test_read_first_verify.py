"""A portal's verify reads before it writes (``apikeys.held``, ``Runtime.read_first``):
on SQLite the key, the user, the method and its guards are read, and the code checked,
without the write lock, which the first write takes. What other workers commit in
between changes nothing a user relies on: one code passes once, the audit chain stays
whole, and a lock that racing failures set holds against a right code."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

import pytest

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import MethodLocked
from stepup.domain.policy import Purpose
from stepup.services import apikeys, audit, ratelimit
from stepup.services.runtime import Actor, Runtime
from stepup.services.verification import check_code
from stepup.store import queries
from stepup.store.db import is_sqlite
from tests.api.helpers import auth, totp_now
from tests.support import instances

ACTOR = Actor(name="user", ip="203.0.113.7")


async def _portal_user_with_totp(runtime: Runtime, clock: FrozenClock) -> tuple[str, str, str]:
    """(the app key, the user's id, the TOTP secret), made through the integration API."""
    _row, key = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    async with instances.http_client(runtime, count=1) as client:
        r = await client.post("/api/v1/users", json={"email": "jane@example.com",
                                                     "external_id": "client-1"},
                              headers=auth(key))
        assert r.status_code == 201, r.text
        uid = str(r.json()["id"])
        r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment",
                              headers=auth(key), json={})
        assert r.status_code in (200, 201), r.text
        secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
        r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment/confirm",
                              headers=auth(key), json={"code": totp_now(secret, clock)})
        assert r.status_code == 200, r.text
    clock.advance(30)  # the enrolment's step is spent
    return key, uid, secret


async def test_two_workers_verifying_one_code_pass_it_once_and_keep_the_chain(
        runtime: Runtime, clock: FrozenClock) -> None:
    key, uid, secret = await _portal_user_with_totp(runtime, clock)
    code = totp_now(secret, clock)
    async with instances.http_client(runtime, count=2) as client:
        answers = await asyncio.gather(*(client.post(
            f"/api/v1/users/{uid}/verify", headers=auth(key),
            json={"method": "totp", "code": code, "purpose": "login"}) for _ in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * 7, [r.text for r in answers]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"code_already_used"}
    report = await audit.verify(runtime)
    assert report.ok, report
    replayed = await audit.search(runtime, user_id=uid, event="code.replayed")
    assert len(replayed) == 7


async def test_a_lock_set_after_the_guards_were_read_holds_against_a_right_code(
        runtime: Runtime, clock: FrozenClock) -> None:
    if not is_sqlite(runtime.settings.effective_database_url):
        pytest.skip("SQLite's read-first transactions read their guards again")
    _key, uid, secret = await _portal_user_with_totp(runtime, clock)
    scopes = ratelimit.scopes_of("totp")
    other = Runtime.build(runtime.settings, clock)  # another worker
    try:
        async with runtime.read_first() as db:
            user, row, guards = await queries.get_user_method_and_guards(db, uid, "totp",
                                                                         scopes)
            assert user is not None and row is not None
            # Meanwhile wrong codes sent to the other worker lock the method.
            async with other.db() as odb:
                locked = None
                for _ in range(runtime.settings.method_lock_after):
                    locked = await ratelimit.method_failed(odb, runtime.settings, clock, uid,
                                                           "totp")
                await odb.commit()
            assert locked is not None
            with pytest.raises(MethodLocked):
                await check_code(runtime, db, ACTOR, user, row, totp_now(secret, clock),
                                 Purpose.login(), guards=guards)
        # The refused check spent nothing: once unlocked, the same code passes.
        async with other.db() as odb:
            await ratelimit.unlock(odb, uid, ratelimit.method_scope("totp"))
            await odb.commit()
        async with runtime.read_first() as db:
            user, row, guards = await queries.get_user_method_and_guards(db, uid, "totp",
                                                                         scopes)
            assert user is not None and row is not None
            await check_code(runtime, db, ACTOR, user, row, totp_now(secret, clock),
                             Purpose.login(), guards=guards)
            await db.commit()
    finally:
        await other.engine.dispose()
