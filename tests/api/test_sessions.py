"""Sessions end after 30 minutes idle or 12 hours after login, whichever comes first."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from tests.api.helpers import auth, problem, session_for, sign_up


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers=auth(token))


async def test_idle_timeout(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    clock.advance(minutes=29)
    assert (await me(client, token)).status_code == 200  # use keeps it alive
    clock.advance(minutes=29)
    assert (await me(client, token)).status_code == 200
    clock.advance(minutes=30)
    problem(await me(client, token), 401, "not_authenticated")
    # Gone for good, even if the clock could be turned back.
    clock.advance(minutes=-30)
    problem(await me(client, token), 401, "not_authenticated")


async def test_idle_just_under_thirty_minutes_is_fine(client: httpx.AsyncClient,
                                                     clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    clock.advance(minutes=29, seconds=59)
    assert (await me(client, token)).status_code == 200


async def test_absolute_timeout_even_when_active(client: httpx.AsyncClient,
                                                 clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": "violet-harbour-7-lanterns"})
    assert r.json()["expires_at"].startswith("2026-11-23T00:00:00")  # 12 h after 12:00
    for _ in range(28):  # 28 × 25 min = 11 h 40 min of steady use
        clock.advance(minutes=25)
        assert (await me(client, token)).status_code == 200
    clock.advance(minutes=19)
    assert (await me(client, token)).status_code == 200  # 11 h 59 min
    clock.advance(minutes=1)
    problem(await me(client, token), 401, "not_authenticated")
