"""The journey of the issue's "done when": sign up, enable TOTP, log in with it and with
a backup code, refused on replay."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from tests.api.helpers import PASSWORD, PIN, auth, enable_totp, session_for, sign_up, totp_now


async def test_sign_up_totp_login_and_backup_code(client: httpx.AsyncClient,
                                                  clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)

    r = await client.get("/api/v1/me/methods", headers=auth(token))
    totp = next(m for m in r.json()["methods"] if m["type"] == "totp")
    assert totp["enabled"] and totp["protects"] == {"login": True, "withdrawal": False}

    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                          headers=auth(token))
    assert r.status_code == 201, r.text
    codes = r.json()["codes"]
    assert len(codes) == 10

    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": PASSWORD})
    body = r.json()
    assert body["status"] == "second_factor_required"
    assert [m["type"] for m in body["methods"]] == ["totp", "backup_codes"]
    code = totp_now(secret, clock)
    r = await client.post("/api/v1/login/verify", json={
        "login_token": body["login_token"], "method": "totp", "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated"

    # The same code again, on a fresh login: refused as already used.
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": PASSWORD})
    lt = r.json()["login_token"]
    r = await client.post("/api/v1/login/verify", json={
        "login_token": lt, "method": "totp", "code": code})
    assert r.status_code == 409 and r.json()["code"] == "code_already_used"

    r = await client.post("/api/v1/login/verify", json={
        "login_token": lt, "method": "backup_codes", "code": codes[0].upper().replace("-", "")})
    assert r.status_code == 200, r.text
