"""Small steps the API tests share: sign up, log in, enrol TOTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from stepup.domain.clock import FrozenClock

PASSWORD = "violet-harbour-7-lanterns"
PIN = "417293"


async def sign_up(client: httpx.AsyncClient, email: str = "jane@example.com") -> dict[str, Any]:
    r = await client.post("/api/v1/accounts", json={"email": email, "password": PASSWORD,
                                                    "pin": PIN})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def session_for(client: httpx.AsyncClient, email: str = "jane@example.com") -> str:
    r = await client.post("/api/v1/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated", r.json()
    return str(r.json()["session_token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def totp_now(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now().timestamp() + 30 * offset_steps)


async def enable_totp(client: httpx.AsyncClient, token: str, clock: FrozenClock) -> str:
    r = await client.post("/api/v1/me/methods/totp/enrollment", json={"pin": PIN},
                          headers=auth(token))
    assert r.status_code == 200, r.text
    uri = r.json()["otpauth_uri"]
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    r = await client.post("/api/v1/me/methods/totp/enrollment/confirm",
                          json={"code": totp_now(secret, clock)}, headers=auth(token))
    assert r.status_code == 200, r.text
    clock.advance(30)  # the next check needs a fresh time step
    return secret
