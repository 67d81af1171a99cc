"""Logging in: the password step, the login_token and the second factor."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    auth,
    enable_backup_codes,
    enable_totp,
    login,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
    verify,
)


async def test_no_methods_means_authenticated_at_once(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    r = await login(client)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "authenticated"
    assert body["session_token"] and body["expires_at"]
    assert "login_token" not in body
    assert (await client.get("/api/v1/me", headers=auth(body["session_token"]))).status_code \
        == 200


async def test_unknown_e_mail_and_wrong_password_answer_identically(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    wrong = await login(client, EMAIL, PASSWORD + "x")
    unknown = await login(client, "nobody@example.com", PASSWORD)
    malformed = await login(client, "not an address", PASSWORD)
    problem(wrong, 401, "invalid_credentials")
    assert wrong.status_code == unknown.status_code == malformed.status_code
    assert wrong.content == unknown.content == malformed.content
    assert wrong.headers["content-type"] == unknown.headers["content-type"]


async def test_second_factor_is_asked_and_login_token_is_single_use(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, await session_for(client), clock)
    r = await login(client)
    body = r.json()
    assert body["status"] == "second_factor_required"
    assert "session_token" not in body
    assert body["methods"] == [{"type": "totp"}]
    lt = body["login_token"]

    r = await verify(client, lt, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated"
    assert (await client.get("/api/v1/me", headers=auth(r.json()["session_token"]))
            ).status_code == 200

    clock.advance(30)
    again = await verify(client, lt, "totp", totp_now(secret, clock))
    problem(again, 401, "not_authenticated")


async def test_login_token_expires_after_five_minutes(client: httpx.AsyncClient,
                                                     clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, await session_for(client), clock)
    fresh = await login_token(client)
    stale = await login_token(client)
    clock.advance(299)
    assert (await verify(client, fresh, "totp", totp_now(secret, clock))).status_code == 200
    clock.advance(2)  # 301 s after the password step
    problem(await verify(client, stale, "totp", totp_now(secret, clock, 1)), 401,
            "not_authenticated")


async def test_a_made_up_login_token_is_refused(client: httpx.AsyncClient) -> None:
    problem(await verify(client, "x" * 43, "totp", "123456"), 401, "not_authenticated")


async def test_a_method_not_protecting_login_is_refused(client: httpx.AsyncClient,
                                                       clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    codes = await enable_backup_codes(client, token)  # the first method: protects login
    secret = await enable_totp(client, token, clock)  # the second: protects nothing
    r = await client.get("/api/v1/me/methods", headers=auth(token))
    protects = {m["type"]: m["protects"]["login"] for m in r.json()["methods"]}
    assert protects["backup_codes"] is True and protects["totp"] is False

    body = (await login(client)).json()
    assert [m["type"] for m in body["methods"]] == ["backup_codes"]
    lt = body["login_token"]
    problem(await verify(client, lt, "totp", totp_now(secret, clock)), 409,
            "method_not_enabled")
    problem(await verify(client, lt, "sms", "123456"), 409, "method_not_enabled")
    problem(await verify(client, lt, "carrier-pigeon", "123456"), 409, "method_not_enabled")
    # The token survives a refused method: the right one still works.
    assert (await verify(client, lt, "backup_codes", codes[0])).status_code == 200


async def test_backup_codes_are_offered_only_while_unused_codes_remain(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                          headers=auth(token))
    codes = r.json()["codes"]

    for code in codes:
        body = (await login(client)).json()
        assert [m["type"] for m in body["methods"]] == ["totp", "backup_codes"]
        r = await verify(client, body["login_token"], "backup_codes", code)
        assert r.status_code == 200, r.text

    body = (await login(client)).json()
    assert [m["type"] for m in body["methods"]] == ["totp"]
    problem(await verify(client, body["login_token"], "backup_codes", codes[0]), 409,
            "method_not_enabled")
    assert (await verify(client, body["login_token"], "totp", totp_now(secret, clock))
            ).status_code == 200


async def test_backup_codes_alone_do_not_add_a_second_step_unless_they_protect_login(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    codes = await enable_backup_codes(client, token)
    # Switched off by the user: login asks for nothing more.
    r = await client.patch("/api/v1/me/methods/backup_codes", headers=auth(token),
                           json={"protects": {"login": False}, "code": codes[0]})
    assert r.status_code == 200, r.text
    assert (await login(client)).json()["status"] == "authenticated"


async def test_logout_makes_the_token_unusable(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    other = await session_for(client)
    r = await client.post("/api/v1/logout", headers=auth(token))
    assert r.status_code == 204
    problem(await client.get("/api/v1/me", headers=auth(token)), 401, "not_authenticated")
    problem(await client.post("/api/v1/logout", headers=auth(token)), 401,
            "not_authenticated")
    # Only that session ended.
    assert (await client.get("/api/v1/me", headers=auth(other))).status_code == 200
