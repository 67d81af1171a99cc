"""Small steps the API tests share: sign up, log in, enrol TOTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from stepup.domain.clock import FrozenClock

PASSWORD = "violet-harbour-7-lanterns"
PIN = "417293"


async def sign_up(client: httpx.AsyncClient, email: str = "jane@example.com", *,
                  verify_email: bool = True) -> dict[str, Any]:
    """A new account; its e-mail verified (as its owner would, with the link of the
    sign-up message) unless ``verify_email`` is False or the message went elsewhere than
    the development outbox."""
    r = await client.post("/api/v1/accounts", json={"email": email, "password": PASSWORD,
                                                    "pin": PIN})
    assert r.status_code == 201, r.text
    if verify_email:
        link = await verification_link(client, email)
        if link is not None:
            await follow_verification_link(client, link)
    return dict(r.json())


VERIFY_LINK = re.compile(r"https?://[^\s/]+(/email/verify/[A-Za-z0-9_.-]+)")


async def verification_link(client: httpx.AsyncClient, email: str) -> str | None:
    """The path of the newest e-mail verification link in the development outbox."""
    r = await client.get("/api/v1/dev/outbox", params={"to": email})
    if r.status_code != 200:
        return None
    for message in r.json()["messages"]:  # newest first
        m = VERIFY_LINK.search(message["body"])
        if m:
            return m.group(1)
    return None


async def follow_verification_link(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """Open the link's page and press its button (the POST verifies, never the GET)."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no form on the link's page"
    r = await client.post(path, data={"csrf_token": token.group(1)})
    assert r.status_code == 200, r.text
    return r


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


# --- shared by the API test modules ---------------------------------------------------

EMAIL = "jane@example.com"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "retryable"}


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with this status and code; return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = dict(r.json())
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["retryable"], bool), body
    assert "Traceback" not in r.text
    return body


async def login(client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD,
                **headers: str) -> httpx.Response:
    return await client.post("/api/v1/login", json={"email": email, "password": password},
                             headers=headers or None)


async def login_token(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    r = await login(client, email)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "second_factor_required", r.json()
    return str(r.json()["login_token"])


async def verify(client: httpx.AsyncClient, token: str, method: str, code: str
                 ) -> httpx.Response:
    return await client.post("/api/v1/login/verify", json={
        "login_token": token, "method": method, "code": code})


async def enable_backup_codes(client: httpx.AsyncClient, token: str) -> list[str]:
    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                          headers=auth(token))
    assert r.status_code == 201, r.text
    return [str(c) for c in r.json()["codes"]]


async def method_view(client: httpx.AsyncClient, token: str, method_type: str
                      ) -> dict[str, Any]:
    r = await client.get("/api/v1/me/methods", headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(next(m for m in r.json()["methods"] if m["type"] == method_type))


def wrong_totp(secret: str, clock: FrozenClock) -> str:
    """A 6-digit code that no step within ±25 of now would give (so no drift hint either)."""
    near = {totp_now(secret, clock, o) for o in range(-25, 26)}
    return next(f"{n:06d}" for n in range(1000, 999999, 7919) if f"{n:06d}" not in near)
