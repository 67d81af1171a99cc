"""A portal's verify reads before it writes (``apikeys.held``, ``Runtime.read_first``):
on SQLite the key, the user, the method and its guards are read, and the code checked,
without the write lock, which the first write takes; on PostgreSQL every read is READ
COMMITTED. What other workers commit in between changes nothing a user relies on: one
code passes once, the audit chain stays whole, and a lock that racing failures set holds
against a right code."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

import pytest

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import DomainError, InvalidCode, MethodLocked
from stepup.domain.policy import Purpose, method_scope
from stepup.services import apikeys, audit, ratelimit
from stepup.services.runtime import Actor, Runtime
from stepup.services.verification import check_code
from stepup.store import queries
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


def _wrong(secret: str, clock: FrozenClock) -> str:
    """A code no step in the check's window accepts."""
    right = {totp_now(secret, clock, step) for step in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in right)


async def _sent_wrong(other: Runtime, uid: str, code: str) -> DomainError:
    """A wrong code checked by another worker, as a verify does it: its failure counted,
    its event recorded, committed (``check_code`` commits and raises)."""
    async with other.db() as odb:
        user, row, _ = await queries.get_user_method_and_guards(
            odb, uid, "totp", ratelimit.scopes_of("totp"))
        assert user is not None and row is not None
        with pytest.raises(DomainError) as refused:
            await check_code(other, odb, ACTOR, user, row, code, Purpose.login())
    return refused.value


@pytest.mark.parametrize(("failed_before", "event_first"), [
    (0, False),  # nothing to clear: the success's event finds the head moved
    (2, False),  # failures to clear: the clear must leave the racing lock alone
    (0, True),   # the head taken before the code passed: read again at once
])
async def test_a_lock_set_after_the_guards_were_read_holds_against_a_right_code(
        runtime: Runtime, clock: FrozenClock, failed_before: int, event_first: bool) -> None:
    """On SQLite a read-first transaction reads its guards again when it takes the write
    lock; on PostgreSQL (READ COMMITTED) when it takes its account's chain head and finds
    it moved: every lock commits with an event of the account."""
    _key, uid, secret = await _portal_user_with_totp(runtime, clock)
    scopes = ratelimit.scopes_of("totp")
    wrong = _wrong(secret, clock)
    other = Runtime.build(runtime.settings, clock)  # another worker
    try:
        for _ in range(failed_before):
            assert isinstance(await _sent_wrong(other, uid, wrong), InvalidCode)
        async with runtime.read_first() as db:
            user, row, guards = await queries.get_user_method_and_guards(db, uid, "totp",
                                                                         scopes)
            assert user is not None and row is not None
            # Meanwhile wrong codes sent to the other worker lock the method.
            refusals = [await _sent_wrong(other, uid, wrong)
                        for _ in range(runtime.settings.method_lock_after - failed_before)]
            assert isinstance(refusals[-1], MethodLocked)
            with pytest.raises(MethodLocked):
                # What a verify does with a right code: the check, its event, COMMIT.
                if event_first:
                    await audit.record(db, clock, ACTOR, "code.requested", user)
                await check_code(runtime, db, ACTOR, user, row, totp_now(secret, clock),
                                 Purpose.login(), guards=guards)
                await audit.record_last(db, clock, ACTOR, "code.verified", user,
                                        method="totp", purpose="login")
                await db.commit()
        async with other.read() as odb:  # the lock is whole
            states = await queries.get_guard_states(odb, uid, scopes)
        until = states[method_scope("totp")][2]
        assert until is not None and until > clock.now()
        # The refused check spent nothing: once unlocked, the same code passes.
        async with other.db() as odb:
            await ratelimit.unlock(odb, uid, method_scope("totp"))
            await odb.commit()
        async with runtime.read_first() as db:
            user, row, guards = await queries.get_user_method_and_guards(db, uid, "totp",
                                                                         scopes)
            assert user is not None and row is not None
            await check_code(runtime, db, ACTOR, user, row, totp_now(secret, clock),
                             Purpose.login(), guards=guards)
            await audit.record_last(db, clock, ACTOR, "code.verified", user,
                                    method="totp", purpose="login")
            await db.commit()
        report = await audit.verify(runtime)
        assert report.ok, report
    finally:
        await other.engine.dispose()
