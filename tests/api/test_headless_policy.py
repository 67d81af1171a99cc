"""The user's switches hold for the portal too: a headless verify or challenge for login
takes a method that protects login, or backup codes; for an operation, a method switched
on for its type. Any other enabled method answers 409 method_not_allowed_for_purpose —
before its code is looked at, so it never counts as a guess."""

from __future__ import annotations

import httpx
import pyotp
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.ops_support import WITHDRAWAL, last_code
from tests.api.test_headless import PHONE, enrol_totp, h, key, new_user, verify

__all__ = ["key"]  # the fixture, shared with test_headless

NOT_ALLOWED = "method_not_allowed_for_purpose"


async def backup_codes(client: httpx.AsyncClient, key: str, uid: str) -> list[str]:
    r = await client.post(f"/api/v1/users/{uid}/methods/backup_codes/enrollment", json={},
                          headers=h(key))
    assert r.status_code == 201, r.text
    return [str(c) for c in r.json()["codes"]]


async def switch(client: httpx.AsyncClient, key: str, uid: str, method: str, code: str,
                 **protects: bool) -> None:
    r = await client.patch(f"/api/v1/users/{uid}/methods/{method}",
                           json={"protects": protects, "code": code}, headers=h(key))
    assert r.status_code == 200, r.text
    assert all(r.json()["protects"][op] is on for op, on in protects.items()), r.json()


async def protects(client: httpx.AsyncClient, key: str, uid: str, method: str
                   ) -> dict[str, bool]:
    r = await client.get(f"/api/v1/users/{uid}/methods", headers=h(key))
    assert r.status_code == 200, r.text
    found = [m for m in r.json()["methods"] if m["type"] == method]
    return dict(found[0]["protects"])


async def challenge(client: httpx.AsyncClient, key: str, uid: str, method: str,
                    purpose: str = "login") -> httpx.Response:
    return await client.post(f"/api/v1/users/{uid}/challenge",
                             json={"method": method, "purpose": purpose}, headers=h(key))


async def failures(runtime: Runtime, uid: str) -> int:
    async with runtime.db() as db:
        q = select(AuditEvent).where(AuditEvent.user_id == uid,
                                     AuditEvent.event.in_(["code.failed", "method.locked"]))
        return len((await db.execute(q)).scalars().all())


async def test_a_method_switched_off_for_login_does_not_verify_a_login(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    codes = await backup_codes(client, key, uid)  # the first method: it protects login
    secret = await enrol_totp(client, key, uid, clock)  # the second protects nothing
    assert await protects(client, key, uid, "totp") == {"login": False, "withdrawal": False}
    # Refused however often: more times than the lock allows, and never counted.
    for _ in range(6):
        body = problem(await verify(client, key, uid, "totp",
                                    pyotp.TOTP(secret).at(clock.now())), 409, NOT_ALLOWED)
        assert body["retryable"] is False
    assert await failures(runtime, uid) == 0
    # The user (through the portal) switches it on for login: now it verifies.
    await switch(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()), login=True)
    clock.advance(30)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    # Backup codes verify a login whatever else protects it.
    r = await verify(client, key, uid, "backup_codes", codes[0])
    assert r.status_code == 200 and r.json()["backup_codes_remaining"] == 9, r.text


async def test_backup_codes_verify_a_login_even_when_nothing_protects_it(
        client: httpx.AsyncClient, key: str, clock: FrozenClock) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)  # first: protects login
    codes = await backup_codes(client, key, uid)
    await switch(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()), login=False)
    clock.advance(30)
    problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now())), 409,
            NOT_ALLOWED)
    r = await verify(client, key, uid, "backup_codes", codes[1])
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    # A method that is not enabled at all is still "not enabled".
    problem(await verify(client, key, uid, "sms", "123456"), 409, "method_not_enabled")
    problem(await challenge(client, key, uid, "sms"), 409, "method_not_enabled")


async def test_an_operation_takes_only_methods_switched_on_for_its_type(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)  # no PIN: the portal checked its own
    secret = await enrol_totp(client, key, uid, clock)  # protects login, not withdrawal
    r = await client.post(f"/api/v1/users/{uid}/operations",
                          json={"type": "withdrawal", "details": WITHDRAWAL}, headers=h(key))
    assert r.status_code == 201 and r.json()["status"] == "code_required", r.text
    op = r.json()["id"]
    for _ in range(5):
        problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()),
                             purpose=op), 409, NOT_ALLOWED)
    problem(await challenge(client, key, uid, "totp", purpose=op), 409, NOT_ALLOWED)
    problem(await verify(client, key, uid, "sms", "123456", purpose=op), 409,
            "method_not_enabled")
    assert await failures(runtime, uid) == 0
    await switch(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()),
                 withdrawal=True)
    clock.advance(30)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()), purpose=op)
    assert r.status_code == 200 and r.json()["receipt"].count(".") == 2, r.text


async def test_challenge_sends_nothing_for_a_method_switched_off(
        client: httpx.AsyncClient, key: str, clock: FrozenClock) -> None:
    uid = await new_user(client, key)
    await enrol_totp(client, key, uid, clock)  # first: protects login
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment", json={"phone": PHONE},
                          headers=h(key))
    assert r.status_code == 202, r.text
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment/confirm",
                          json={"code": await last_code(client, PHONE, "sms")}, headers=h(key))
    assert r.status_code == 200 and r.json()["protects"] == {"login": False,
                                                             "withdrawal": False}, r.text
    sent = await outbox_size(client)
    problem(await challenge(client, key, uid, "sms"), 409, NOT_ALLOWED)
    r = await client.post(f"/api/v1/users/{uid}/operations",
                          json={"type": "withdrawal", "details": WITHDRAWAL}, headers=h(key))
    assert r.status_code == 201, r.text
    problem(await challenge(client, key, uid, "sms", purpose=r.json()["id"]), 409, NOT_ALLOWED)
    assert await outbox_size(client) == sent  # no code went out
    # Switched on for login (with a code of its own), it sends.
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/challenge", json={},
                          headers=h(key))
    assert r.status_code == 202, r.text
    await switch(client, key, uid, "sms", await last_code(client, PHONE, "sms"), login=True)
    r = await challenge(client, key, uid, "sms")
    assert r.status_code == 202, r.text
    r = await verify(client, key, uid, "sms", await last_code(client, PHONE, "sms"))
    assert r.status_code == 200 and r.json()["valid"] is True, r.text


async def outbox_size(client: httpx.AsyncClient) -> int:
    r = await client.get("/api/v1/dev/outbox", params={"to": PHONE})
    assert r.status_code == 200, r.text
    return len(r.json()["messages"])
