"""“Remember this device”: it skips the second factor of login only, for 30 days, until
revoked or until any method changes — and never a withdrawal."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import RememberedDevice
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    auth,
    enable_totp,
    login_token,
    session_for,
    sign_up,
    totp_now,
)
from tests.api.ops_support import confirm, last_code, past_pin


async def _login(client: httpx.AsyncClient, device: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"email": EMAIL, "password": PASSWORD}
    if device:
        body["remember_device_token"] = device
    r = await client.post("/api/v1/login", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _remembered(client: httpx.AsyncClient, clock: FrozenClock, secret: str) -> str:
    lt = await login_token(client)
    r = await client.post("/api/v1/login/verify", json={
        "login_token": lt, "method": "totp", "code": totp_now(secret, clock),
        "remember_device": True})
    assert r.status_code == 200, r.text
    clock.advance(30)
    return str(r.json()["remember_device_token"])


async def test_remembered_device_skips_the_login_code_and_only_that(
        client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    device = await _remembered(client, clock, secret)

    answer = await _login(client, device)
    assert answer["status"] == "authenticated"
    session = answer["session_token"]
    # Without the token, or with a made-up one, the code is asked again.
    assert (await _login(client, None))["status"] == "second_factor_required"
    assert (await _login(client, device + "x"))["status"] == "second_factor_required"

    # A withdrawal still needs its own code: always policy sends it to the account e-mail.
    op = await past_pin(client, session)
    r = await confirm(client, session, op, "email", "000000")
    assert r.status_code == 400 and r.json()["code"] == "invalid_code"
    r = await client.post(f"/api/v1/me/operations/{op}/challenge", json={"method": "email"},
                          headers=auth(session))
    assert r.status_code == 202, r.text
    code = await last_code(client, EMAIL, "email")
    assert (await confirm(client, session, op, "email", code)).json()["status"] == "confirmed"

    # Stored only as a hash.
    async with runtime.db() as db:
        rows = (await db.execute(select(RememberedDevice))).scalars().all()
    assert len(rows) == 1 and device.encode() not in rows[0].token_hash


async def test_a_device_is_remembered_for_30_days(client: httpx.AsyncClient,
                                                   clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, await session_for(client), clock)
    device = await _remembered(client, clock, secret)
    clock.advance(days=29, hours=23)
    assert (await _login(client, device))["status"] == "authenticated"
    clock.advance(hours=1, seconds=1)
    assert (await _login(client, device))["status"] == "second_factor_required"


async def test_any_method_change_forgets_remembered_devices(client: httpx.AsyncClient,
                                                            clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    device = await _remembered(client, clock, secret)
    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": "417293"},
                          headers=auth(token))
    assert r.status_code == 201
    assert (await _login(client, device))["status"] == "second_factor_required"


async def test_devices_are_listed_and_revoked_by_the_user(client: httpx.AsyncClient,
                                                          clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    first = await _remembered(client, clock, secret)
    second = await _remembered(client, clock, secret)
    r = await client.get("/api/v1/me/devices", headers=auth(token))
    listed = r.json()["devices"]
    assert len(listed) == 2 and "token" not in str(listed)
    r = await client.delete(f"/api/v1/me/devices/{listed[0]['id']}", headers=auth(token))
    assert r.status_code == 204
    statuses = {(await _login(client, d))["status"] for d in (first, second)}
    assert statuses == {"authenticated", "second_factor_required"}
    assert (await client.delete("/api/v1/me/devices/nope", headers=auth(token))).status_code == 404
    assert (await client.delete("/api/v1/me/devices", headers=auth(token))).status_code == 204
    assert (await _login(client, first))["status"] == "second_factor_required"
    assert (await _login(client, second))["status"] == "second_factor_required"


async def test_a_device_token_of_another_user_is_worthless(client: httpx.AsyncClient,
                                                           clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, await session_for(client), clock)
    device = await _remembered(client, clock, secret)
    await sign_up(client, "omar@example.com")
    clock.advance(30)
    await enable_totp(client, await session_for(client, "omar@example.com"), clock)
    r = await client.post("/api/v1/login", json={"email": "omar@example.com",
                                                 "password": PASSWORD,
                                                 "remember_device_token": device})
    assert r.json()["status"] == "second_factor_required"
