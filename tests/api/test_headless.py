"""Headless integration: a portal with its own login page enrols methods on the user's
behalf and has StepUp send and check codes — refused on replay and guessing exactly as
on StepUp's own pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.ops_support import WITHDRAWAL, last_code

PHONE = "+79161234567"


@pytest.fixture
async def key(runtime: Runtime) -> str:
    _row, token = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    return token


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_user(client: httpx.AsyncClient, key: str, **extra: Any) -> str:
    # The portal vouches for its client's e-mail (it verified the address itself).
    r = await client.post("/api/v1/users", json={"email": "jane@example.com",
                                                 "external_id": "client-1",
                                                 "email_verified": True, **extra},
                          headers=h(key))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def enrol_totp(client: httpx.AsyncClient, key: str, uid: str, clock: FrozenClock) -> str:
    r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment", json={},
                          headers=h(key))
    assert r.status_code == 200, r.text
    secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
    r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment/confirm",
                          json={"code": pyotp.TOTP(secret).at(clock.now())}, headers=h(key))
    assert r.status_code == 200 and r.json()["enabled"], r.text
    clock.advance(30)
    return secret


async def verify(client: httpx.AsyncClient, key: str, uid: str, method: str, code: str,
                 purpose: str = "login", context: dict[str, str] | None = None
                 ) -> httpx.Response:
    """``context``: the end user's headers the portal forwards (StepUp-End-User-IP, …)."""
    return await client.post(f"/api/v1/users/{uid}/verify",
                             json={"method": method, "code": code, "purpose": purpose},
                             headers={**h(key), **(context or {})})


async def test_totp_verify_is_single_use_and_guessing_locks(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    code = pyotp.TOTP(secret).at(clock.now())
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is True and r.json()["method"] == "totp"
    # A replay is refused, and it is no guess: it does not count towards the lock.
    problem(await verify(client, key, uid, "totp", code), 409, "code_already_used")
    for _ in range(4):
        problem(await verify(client, key, uid, "totp", "000000"), 400, "invalid_code")
    body = problem(await verify(client, key, uid, "totp", "000001"), 423, "method_locked")
    assert body["retry_after"] == 60
    clock.advance(30)
    # Even the right code waits for the lock to pass.
    problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now())), 423,
            "method_locked")
    clock.advance(31)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    async with runtime.db() as db:
        actors = {e.actor for e in (await db.execute(
            select(AuditEvent).where(AuditEvent.user_id == uid))).scalars()}
    assert any(a.startswith("app:") for a in actors)


async def test_sms_through_the_api_only(client: httpx.AsyncClient, key: str,
                                        clock: FrozenClock) -> None:
    uid = await new_user(client, key)
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment", json={"phone": PHONE},
                          headers=h(key))
    assert r.status_code == 202 and r.json()["sent_to"] == "+7 *** ***-45-67", r.text
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment/confirm",
                          json={"code": await last_code(client, PHONE, "sms")}, headers=h(key))
    assert r.status_code == 200 and r.json()["enabled"], r.text

    r = await client.post(f"/api/v1/users/{uid}/challenge",
                          json={"method": "sms", "purpose": "login"}, headers=h(key))
    assert r.status_code == 202 and r.json()["sent_to"] == "+7 *** ***-45-67", r.text
    code = await last_code(client, PHONE, "sms")
    assert (await verify(client, key, uid, "sms", code)).json()["valid"] is True
    problem(await verify(client, key, uid, "sms", code), 409, "code_already_used")
    # TOTP and backup codes send nothing.
    r = await client.post(f"/api/v1/users/{uid}/challenge",
                          json={"method": "totp", "purpose": "login"}, headers=h(key))
    assert r.status_code == 409


async def test_an_operation_is_confirmed_by_verify_with_its_id(
        client: httpx.AsyncClient, key: str, clock: FrozenClock) -> None:
    uid = await new_user(client, key)  # no PIN: the portal checked its own
    secret = await enrol_totp(client, key, uid, clock)
    r = await client.patch(f"/api/v1/users/{uid}/methods/totp",
                           json={"protects": {"withdrawal": True},
                                 "code": pyotp.TOTP(secret).at(clock.now())}, headers=h(key))
    assert r.status_code == 200, r.text
    clock.advance(30)
    r = await client.post(f"/api/v1/users/{uid}/operations",
                          json={"type": "withdrawal", "details": WITHDRAWAL}, headers=h(key))
    assert r.status_code == 201 and r.json()["status"] == "code_required", r.text
    op = r.json()["id"]
    code = pyotp.TOTP(secret).at(clock.now())
    problem(await verify(client, key, uid, "totp", code, purpose="0" * 32), 404, "not_found")
    r = await verify(client, key, uid, "totp", code, purpose=op)
    assert r.status_code == 200 and r.json()["receipt"].count(".") == 2, r.text
    r = await client.get(f"/api/v1/users/{uid}/operations/{op}", headers=h(key))
    assert r.json()["status"] == "confirmed"
    clock.advance(30)
    problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()),
                         purpose=op), 409, "operation_already_confirmed")


async def test_backup_codes_on_behalf(client: httpx.AsyncClient, key: str) -> None:
    uid = await new_user(client, key)
    r = await client.post(f"/api/v1/users/{uid}/methods/backup_codes/enrollment", json={},
                          headers=h(key))
    assert r.status_code == 201 and len(r.json()["codes"]) == 10
    first = r.json()["codes"][0]
    r = await verify(client, key, uid, "backup_codes", first)
    assert r.json()["backup_codes_remaining"] == 9
    problem(await verify(client, key, uid, "backup_codes", first), 409, "code_already_used")


async def test_a_pin_given_on_behalf_is_still_checked(client: httpx.AsyncClient,
                                                      key: str) -> None:
    uid = await new_user(client, key, pin="417293")
    r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment",
                          json={"pin": "999111"}, headers=h(key))
    problem(r, 400, "pin_invalid")


async def test_scopes_and_per_key_rate(client: httpx.AsyncClient, runtime: Runtime,
                                       key: str, clock: FrozenClock) -> None:
    uid = await new_user(client, key)
    _row, verify_only = await apikeys.create(runtime, "checker", "app", Actor(name="t"),
                                             scopes=["verify"], rate_per_minute=3)
    problem(await client.get(f"/api/v1/users/{uid}/methods", headers=h(verify_only)), 403,
            "forbidden")
    for _ in range(3):  # three calls a minute: the refused scope above did not count
        problem(await verify(client, verify_only, uid, "totp", "123456"), 409,
                "method_not_enabled")
    r = await verify(client, verify_only, uid, "totp", "123456")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    problem(r, 429, "api_quota_exceeded")
    clock.advance(60)  # a new minute
    problem(await verify(client, verify_only, uid, "totp", "123456"), 409, "method_not_enabled")
    with pytest.raises(Exception, match="scope"):
        await apikeys.create(runtime, "bad", "app", Actor(name="t"), scopes=["everything"])


async def test_unknown_user_and_bad_purpose(client: httpx.AsyncClient, key: str) -> None:
    problem(await verify(client, key, "0" * 32, "totp", "123456"), 404, "not_found")
    uid = await new_user(client, key)
    problem(await verify(client, key, uid, "totp", "123456", purpose="../x"), 422,
            "validation_error")
