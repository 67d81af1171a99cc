"""Password guessing is throttled per account *and* client network, so an attacker cannot
turn it on the owner: the attacker's network is refused, the owner's network and
remembered devices still log in, a per-account ceiling (well inside NIST SP 800-63B's
100) stops a distributed attack, and support's unlock clears it. And no argon2 runs
inside a write transaction."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.errors import InvalidCredentials
from stepup.services import login as login_service
from stepup.services import support
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    enable_totp,
    login,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
)
from tests.support import instances
from tests.support.blocking import slow_runtime, writes_commit_while_hashing

WRONG = "wrong-password-123"
PER_ADDRESS = 10
CEILING = 50
A = "203.0.113.7"  # the suite's client (tests/support/instances.py)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The slow-down is measured in one test; elsewhere it would only make the suite slow.
    return settings.model_copy(update={"password_slowdown_seconds": 0.001,
                                       "password_slowdown_max_seconds": 0.005})


@contextlib.asynccontextmanager
async def from_ip(runtime: Runtime, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    async with instances.http_client(runtime, client=(ip, 40000)) as c:
        yield c


async def fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        problem(await login(client, email, WRONG), 401, "invalid_credentials")


async def remembered_device(client: httpx.AsyncClient, clock: FrozenClock) -> str:
    secret = await enable_totp(client, await session_for(client), clock)
    r = await client.post("/api/v1/login/verify", json={
        "login_token": await login_token(client), "method": "totp",
        "code": totp_now(secret, clock), "remember_device": True})
    assert r.status_code == 200, r.text
    clock.advance(30)
    return str(r.json()["remember_device_token"])


def _device_login(token: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"email": EMAIL, "password": password, "remember_device_token": token}


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"])
async def test_the_attackers_network_is_throttled_not_the_owner(
        client: httpx.AsyncClient, runtime: Runtime, email: str) -> None:
    await sign_up(client)
    await fail(client, email, PER_ADDRESS)
    r = await login(client, email, PASSWORD)
    body = problem(r, 429, "rate_limited")
    assert 0 < int(r.headers["Retry-After"]) <= 900 and body["retry_after"] > 0
    # Rotating addresses within the /24 does not help.
    async with from_ip(runtime, "203.0.113.200") as neighbour:
        problem(await login(neighbour, email, WRONG), 429, "rate_limited")
    # Another network logs in (or, for an unknown address, is merely told it is wrong).
    async with from_ip(runtime, "198.51.100.20") as home:
        r = await login(home, email, PASSWORD)
        if email == EMAIL:
            assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
        else:
            problem(r, 401, "invalid_credentials")
    # The owner's success does not lift the attacker's throttle.
    problem(await login(client, email, PASSWORD), 429, "rate_limited")


async def test_ipv6_is_throttled_per_64(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    for i in range(PER_ADDRESS):
        async with from_ip(runtime, f"2001:db8:1:2::{i + 1:x}") as c:
            await fail(c, EMAIL, 1)
    async with from_ip(runtime, "2001:db8:1:2:ffff::9") as same_64:
        problem(await login(same_64, EMAIL, PASSWORD), 429, "rate_limited")
    async with from_ip(runtime, "2001:db8:1:3::1") as other_64:
        assert (await login(other_64, EMAIL, PASSWORD)).status_code == 200


async def test_a_remembered_device_logs_in_from_the_throttled_network(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    device = await remembered_device(client, clock)
    await fail(client, EMAIL, PER_ADDRESS)
    problem(await login(client, EMAIL, PASSWORD), 429, "rate_limited")
    r = await client.post("/api/v1/login", json=_device_login(device))
    assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
    # A device is throttled on its own: a stolen token is no licence to guess.
    for _ in range(PER_ADDRESS):
        r = await client.post("/api/v1/login", json=_device_login(device, WRONG))
        problem(r, 401, "invalid_credentials")
    problem(await client.post("/api/v1/login", json=_device_login(device)), 429,
            "rate_limited")


async def _spread_failures(runtime: Runtime, email: str, count: int) -> None:
    """``count`` wrong passwords from as many /24 networks as the throttle needs."""
    for n in range(0, count, PER_ADDRESS):
        async with from_ip(runtime, f"10.{n // PER_ADDRESS}.0.1") as c:
            await fail(c, email, min(PER_ADDRESS, count - n))


async def test_the_account_ceiling_refuses_everyone_but_a_remembered_device(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    device = await remembered_device(client, clock)
    answers = []
    for email in (EMAIL, "nobody@example.com"):
        await _spread_failures(runtime, email, CEILING)
        async with from_ip(runtime, "198.51.100.20") as fresh:
            answers.append(await login(fresh, email, PASSWORD))
    known, unknown = answers
    problem(known, 429, "rate_limited")
    # An unknown address answers alike: nothing tells whether the account exists.
    assert known.content == unknown.content
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]
    assert int(known.headers["Retry-After"]) > 900  # until the ceiling window ends

    # The remembered device passes the password step, but past the ceiling the second
    # factor is asked all the same.
    async with from_ip(runtime, "198.51.100.20") as fresh:
        r = await fresh.post("/api/v1/login", json=_device_login(device))
        assert r.status_code == 200 and r.json()["status"] == "second_factor_required"

        # Its right password ended the run: the owner is back to normal everywhere.
        r = await fresh.post("/api/v1/login", json=_device_login(device))
        assert r.json()["status"] == "authenticated", r.text
        assert (await login(fresh)).status_code == 200


async def test_support_unlock_lifts_the_ceiling(client: httpx.AsyncClient,
                                                runtime: Runtime) -> None:
    await sign_up(client)
    await _spread_failures(runtime, EMAIL, CEILING)
    problem(await login(client), 429, "rate_limited")
    cleared = await support.unlock(runtime, Actor(name="cli"), EMAIL, "password")
    assert cleared == ["password"]
    assert (await login(client)).status_code == 200


async def test_support_unlock_clears_the_password_throttle(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    await fail(client, EMAIL, PER_ADDRESS)
    problem(await login(client), 429, "rate_limited")
    cleared = await support.unlock(runtime, Actor(name="cli"), EMAIL)  # what=all
    assert "password" in cleared and "account" in cleared
    assert (await login(client)).status_code == 200
    async with runtime.db() as db:
        events = (await db.execute(select(AuditEvent.event))).scalars().all()
    assert "account.unlocked" in events


async def test_the_ceiling_ends_with_its_window(client: httpx.AsyncClient, runtime: Runtime,
                                                clock: FrozenClock) -> None:
    await sign_up(client)
    await _spread_failures(runtime, EMAIL, CEILING)
    r = await login(client)
    retry = int(problem(r, 429, "rate_limited")["retry_after"])
    clock.advance(retry - 1)
    problem(await login(client), 429, "rate_limited")
    clock.advance(1)
    assert (await login(client)).status_code == 200


async def test_failures_from_anywhere_slow_the_account_down_without_refusing(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    runtime.settings.password_slowdown_seconds = 1.0  # this test's own settings object
    runtime.settings.password_slowdown_max_seconds = 2.0
    await sign_up(client)
    await fail(client, EMAIL, PER_ADDRESS)
    async with from_ip(runtime, "198.51.100.20") as home:
        started = time.monotonic()
        assert (await login(home)).status_code == 200
        assert time.monotonic() - started >= 1.0
        # The success ended the run: no more waiting.
        started = time.monotonic()
        assert (await login(home)).status_code == 200
        assert time.monotonic() - started < 1.0


async def test_racing_guesses_cannot_pass_the_limit(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    answers = await asyncio.gather(*(login(client, EMAIL, WRONG) for _ in range(25)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(401) <= PER_ADDRESS and set(codes) <= {401, 429}, codes


# --- no argon2 inside a write transaction -----------------------------------------------


async def test_no_write_lock_is_held_while_the_password_is_hashed(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    slow, hasher = slow_runtime(runtime, "verify_password")
    attempt = await writes_commit_while_hashing(runtime, hasher, login_service.password_step(
        slow, Actor(ip=A), EMAIL, WRONG))
    with pytest.raises(InvalidCredentials):
        attempt.result()
    async with runtime.db() as db:
        failed = (await db.execute(select(AuditEvent.event).where(
            AuditEvent.event == "login.password_failed"))).scalars().all()
    assert failed == ["login.password_failed"]
