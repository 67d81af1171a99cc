"""Password guessing is throttled per e-mail address, known or not, from one client
network (the suite's client); other networks and remembered devices: test_password_throttle.py."""

from __future__ import annotations

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from tests.api.helpers import EMAIL, PASSWORD, login, problem, sign_up

LIMIT = 10


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"])
async def test_ten_failures_then_rate_limited_until_the_window_ends(
        client: httpx.AsyncClient, clock: FrozenClock, email: str) -> None:
    await sign_up(client)
    for _ in range(LIMIT):
        problem(await login(client, email, "wrong-password-123"), 401, "invalid_credentials")
    r = await login(client, email, "wrong-password-123")
    body = problem(r, 429, "rate_limited")
    retry = int(r.headers["Retry-After"])
    assert 0 < retry <= 900
    assert body["retry_after"] == retry
    # Even the right password waits (for the real account).
    problem(await login(client, email, PASSWORD), 429, "rate_limited")
    # Another e-mail address is not affected.
    assert (await login(client, "other@example.com", "x" * 12)).status_code == 401

    clock.advance(retry - 1)
    problem(await login(client, email, PASSWORD), 429, "rate_limited")
    clock.advance(1)
    r = await login(client, email, PASSWORD)
    if email == EMAIL:
        assert r.status_code == 200 and r.json()["status"] == "authenticated"
    else:
        problem(r, 401, "invalid_credentials")


async def test_throttled_answers_do_not_reveal_whether_the_account_exists(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    answers = []
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(LIMIT):
            await login(client, email, "wrong-password-123")
        answers.append(await login(client, email, "wrong-password-123"))
    known, unknown = answers
    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]


async def test_the_address_is_throttled_however_it_is_typed(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for i in range(LIMIT):
        typed = EMAIL.upper() if i % 2 else f"  {EMAIL} "
        await login(client, typed, "wrong-password-123")
    problem(await login(client, EMAIL, PASSWORD), 429, "rate_limited")


async def test_a_success_resets_the_count(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for _ in range(LIMIT - 1):
        await login(client, EMAIL, "wrong-password-123")
    assert (await login(client)).status_code == 200
    for _ in range(LIMIT - 1):
        problem(await login(client, EMAIL, "wrong-password-123"), 401, "invalid_credentials")
