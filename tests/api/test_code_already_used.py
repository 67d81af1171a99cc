"""A code that was already accepted answers 409 ``code_already_used`` and never counts as
a failure, so a portal's retry or a double submit cannot lock anyone; a wrong code is
still a guess. Checked for TOTP, backup codes and SMS, on the hosted login
(``/login/verify``) and on the integration API (``/users/{id}/verify``), and for
passkeys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent
from tests.api import helpers
from tests.api.helpers import (
    PIN,
    auth,
    enable_backup_codes,
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
    wrong_totp,
)
from tests.api.ops_support import last_code
from tests.support.passkey import SoftPasskey

PHONE = "+79161234567"
METHODS = ("totp", "backup_codes", "sms")
SURFACES = ("hosted", "integration")


@dataclass
class Subject:
    """One user with one method, reached through one surface."""

    user_id: str
    method: str
    verify: Callable[[str], Awaitable[httpx.Response]]
    fresh_code: Callable[[], Awaitable[str]]  # a valid code never used (moves the clock)
    wrong_code: Callable[[str], str]  # a wrong code, given the one just accepted


def _next_code(codes: list[str]) -> Callable[[], Awaitable[str]]:
    async def take() -> str:
        return codes.pop(0)
    return take


async def hosted(client: httpx.AsyncClient, clock: FrozenClock, method: str) -> Subject:
    """A user of StepUp's own pages: every verify is a new login (password, then code)."""
    user_id = str((await sign_up(client))["id"])
    token = await session_for(client)

    async def verify(code: str) -> httpx.Response:
        return await helpers.verify(client, await login_token(client), method, code)

    if method == "totp":
        secret = await enable_totp(client, token, clock)
        return Subject(user_id, method, verify, _totp_source(secret, clock),
                       lambda _: wrong_totp(secret, clock))
    if method == "backup_codes":
        return Subject(user_id, method, verify, _next_code(await enable_backup_codes(
            client, token)), lambda _: "00000-00000")
    r = await client.post("/api/v1/me/methods/sms/enrollment", json={"pin": PIN, "phone": PHONE},
                          headers=auth(token))
    assert r.status_code == 202, r.text
    r = await client.post("/api/v1/me/methods/sms/enrollment/confirm",
                          json={"code": await last_code(client, PHONE, "sms")},
                          headers=auth(token))
    assert r.status_code == 200, r.text

    async def sms_code() -> str:
        clock.advance(61)  # past the resend cooldown
        r = await client.post("/api/v1/login/challenge",
                              json={"login_token": await login_token(client), "method": "sms"})
        assert r.status_code == 202, r.text
        return await last_code(client, PHONE, "sms")

    return Subject(user_id, method, verify, sms_code, _wrong_sms)


async def integration(client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime,
                      method: str) -> Subject:
    """A portal's user, created, enrolled and checked through the integration API."""
    _row, key = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    h = auth(key)
    r = await client.post("/api/v1/users", json={"email": "jane@example.com",
                                                 "external_id": "client-1"}, headers=h)
    assert r.status_code == 201, r.text
    uid = str(r.json()["id"])
    base = f"/api/v1/users/{uid}"

    async def verify(code: str) -> httpx.Response:
        return await client.post(f"{base}/verify", headers=h, json={
            "method": method, "code": code, "purpose": "login"})

    r = await client.post(f"{base}/methods/{method}/enrollment", headers=h,
                          json={"phone": PHONE} if method == "sms" else {})
    assert r.status_code in (200, 201, 202), r.text
    if method == "backup_codes":
        return Subject(uid, method, verify, _next_code(list(r.json()["codes"])),
                       lambda _: "00000-00000")
    if method == "totp":
        secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
        proof = totp_now(secret, clock)
    else:
        proof = await last_code(client, PHONE, "sms")
    r = await client.post(f"{base}/methods/{method}/enrollment/confirm", headers=h,
                          json={"code": proof})
    assert r.status_code == 200 and r.json()["enabled"], r.text
    if method == "totp":
        return Subject(uid, method, verify, _totp_source(secret, clock),
                       lambda _: wrong_totp(secret, clock))

    async def sms_code() -> str:
        clock.advance(61)  # past the resend cooldown
        r = await client.post(f"{base}/challenge", headers=h,
                              json={"method": "sms", "purpose": "login"})
        assert r.status_code == 202, r.text
        return await last_code(client, PHONE, "sms")

    return Subject(uid, method, verify, sms_code, _wrong_sms)


def _totp_source(secret: str, clock: FrozenClock) -> Callable[[], Awaitable[str]]:
    async def code() -> str:
        clock.advance(30)  # a step not accepted yet
        return totp_now(secret, clock)
    return code


def _wrong_sms(accepted: str) -> str:
    return f"{(int(accepted) + 1) % 1_000_000:06d}"


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def subject(surface: str, method: str, client: httpx.AsyncClient, clock: FrozenClock,
                  runtime: Runtime) -> Subject:
    if surface == "hosted":
        return await hosted(client, clock, method)
    return await integration(client, clock, runtime, method)


async def events(runtime: Runtime, user_id: str, event: str) -> list[AuditEvent]:
    async with runtime.db() as db:
        q = (select(AuditEvent).where(AuditEvent.user_id == user_id, AuditEvent.event == event)
             .order_by(AuditEvent.id))
        return list((await db.execute(q)).scalars().all())


@pytest.mark.parametrize("method", METHODS)
async def test_a_code_sent_again_after_acceptance_never_locks(
        surface: str, method: str, client: httpx.AsyncClient, clock: FrozenClock,
        runtime: Runtime) -> None:
    s = await subject(surface, method, client, clock, runtime)
    code = await s.fresh_code()
    r = await s.verify(code)
    assert r.status_code == 200, r.text
    failed_before = len(await events(runtime, s.user_id, "code.failed"))
    for _ in range(10):
        problem(await s.verify(code), 409, "code_already_used")
    # Twice the lock's five: not locked, and the next new code is accepted.
    r = await s.verify(await s.fresh_code())
    assert r.status_code == 200, r.text
    replayed = await events(runtime, s.user_id, "code.replayed")
    assert len(replayed) == 10
    assert {(e.data["method"], e.data["purpose"]) for e in replayed} == {(method, "login")}
    assert len(await events(runtime, s.user_id, "code.failed")) == failed_before


@pytest.mark.parametrize("method", METHODS)
async def test_wrong_codes_still_lock_and_a_replay_does_not_get_past_a_lock(
        surface: str, method: str, client: httpx.AsyncClient, clock: FrozenClock,
        runtime: Runtime) -> None:
    s = await subject(surface, method, client, clock, runtime)
    code = await s.fresh_code()
    assert (await s.verify(code)).status_code == 200
    for _ in range(4):
        problem(await s.verify(s.wrong_code(code)), 400, "invalid_code")
    # A replay between the guesses neither counts nor clears them.
    problem(await s.verify(code), 409, "code_already_used")
    body = problem(await s.verify(s.wrong_code(code)), 423, "method_locked")
    assert body["retry_after"] == 60
    # Locked: the lock answers first, for the used code as for any other.
    problem(await s.verify(code), 423, "method_locked")
    assert len(await events(runtime, s.user_id, "code.replayed")) == 1


@pytest.mark.parametrize("method", METHODS)
async def test_concurrent_submits_of_one_code_pass_once_and_lock_nothing(
        method: str, client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime) -> None:
    s = await integration(client, clock, runtime, method)
    code = await s.fresh_code()
    answers = await asyncio.gather(*(s.verify(code) for _ in range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * 5, [r.text for r in answers]
    r = await s.verify(await s.fresh_code())
    assert r.status_code == 200, r.text


async def test_a_replay_is_only_a_replay_of_the_accepted_code(
        client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime) -> None:
    # TOTP: out of the ±1 window, a used code is only a wrong code again.
    s = await integration(client, clock, runtime, "totp")
    code = await s.fresh_code()
    assert (await s.verify(code)).status_code == 200
    clock.advance(90)
    problem(await s.verify(code), 400, "invalid_code")


async def test_an_sms_code_replaced_by_a_newer_one_is_not_already_used(
        client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime) -> None:
    s = await integration(client, clock, runtime, "sms")
    first = await s.fresh_code()
    assert (await s.verify(first)).status_code == 200
    problem(await s.verify(first), 409, "code_already_used")
    # Once a newer code is out, only the newest one is "the code just accepted": the
    # older one is refused like any wrong code (it counts).
    second = await s.fresh_code()
    problem(await s.verify(first), 400, "invalid_code")
    assert (await s.verify(second)).status_code == 200
    # And an accepted code that has since expired is just a wrong code.
    clock.advance(301)
    problem(await s.verify(second), 400, "invalid_code")


async def test_a_passkey_answer_sent_again_is_already_used_a_refused_one_is_not(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    passkey = SoftPasskey()
    r = await client.post("/api/v1/me/methods/webauthn/enrollment", json={"pin": PIN},
                          headers=auth(token))
    r = await client.post("/api/v1/me/methods/webauthn/enrollment/confirm",
                          json={"code": passkey.create(r.json()["options"])},
                          headers=auth(token))
    assert r.status_code == 200, r.text

    async def options() -> tuple[str, dict[str, object]]:
        lt = await login_token(client)
        r = await client.post("/api/v1/login/challenge",
                              json={"login_token": lt, "method": "webauthn"})
        assert r.status_code == 202, r.text
        return lt, dict(r.json()["options"])

    lt, opts = await options()
    answer = passkey.get(opts)
    assert (await helpers.verify(client, lt, "webauthn", answer)).status_code == 200
    for _ in range(6):
        problem(await helpers.verify(client, await login_token(client), "webauthn", answer),
                409, "code_already_used")
    # An answer that was refused (a counter gone backwards: a cloned key) and is sent
    # again was never accepted: still refused as invalid, and counted.
    lt, opts = await options()
    clone = passkey.get(opts, count=passkey.sign_count - 1)
    problem(await helpers.verify(client, lt, "webauthn", clone), 400, "invalid_code")
    problem(await helpers.verify(client, await login_token(client), "webauthn", clone),
            400, "invalid_code")
    lt, opts = await options()
    assert (await helpers.verify(client, lt, "webauthn", passkey.get(opts))).status_code == 200
