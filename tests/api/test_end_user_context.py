"""The end user's context: a portal forwards its user's address and browser
(StepUp-End-User-IP, StepUp-End-User-Agent), and they — never the portal's own server
address — feed the audit log, the notices and the new-device check of a headless login."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, NotificationQueue
from tests.api.helpers import problem
from tests.api.test_headless import enrol_totp, h, new_user, verify
from tests.support.instances import CLIENT

PORTAL_SERVER = CLIENT[0]  # the address the test client (the portal's server) calls from
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
HOME = {"StepUp-End-User-IP": "198.51.100.23", "StepUp-End-User-Agent": FIREFOX}


@pytest.fixture
async def key(runtime: Runtime) -> str:
    _row, token = await apikeys.create(runtime, "p", "app", Actor(name="test"))
    return token


async def events(runtime: Runtime, uid: str) -> list[AuditEvent]:
    async with runtime.db() as db:
        q = select(AuditEvent).where(AuditEvent.user_id == uid).order_by(AuditEvent.id)
        return list((await db.execute(q)).scalars().all())


async def notices(runtime: Runtime, uid: str, kind: str) -> list[dict[str, Any]]:
    """The data of the queued notices of this kind, one per notice (not per recipient)."""
    async with runtime.db() as db:
        q = select(NotificationQueue).where(NotificationQueue.user_id == uid,
                                            NotificationQueue.kind == kind,
                                            NotificationQueue.channel == "email")
        rows = (await db.execute(q.order_by(NotificationQueue.created_at))).scalars().all()
        return [dict(r.data) for r in rows]


def code(secret: str, clock: FrozenClock) -> str:
    clock.advance(30)
    return pyotp.TOTP(secret).at(clock.now())


async def test_audit_and_notices_carry_the_end_users_ip_and_agent(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment", json={},
                          headers={**h(key), **HOME})
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = await client.post(f"/api/v1/users/{uid}/methods/totp/enrollment/confirm",
                          json={"code": pyotp.TOTP(secret).at(clock.now())},
                          headers={**h(key), **HOME})
    assert r.status_code == 200, r.text
    problem(await verify(client, key, uid, "totp", "000000", context=HOME), 400,
            "invalid_code")
    r = await verify(client, key, uid, "totp", code(secret, clock), context=HOME)
    assert r.status_code == 200, r.text

    rows = await events(runtime, uid)
    by_event = {e.event: e for e in rows}
    for name in ("method.enabled", "code.failed", "login.succeeded"):
        row = by_event[name]
        assert (row.ip, row.user_agent) == (HOME["StepUp-End-User-IP"], FIREFOX), name
        assert row.actor.startswith("app:"), row.actor
    login = by_event["login.succeeded"].data
    assert login["via"] == "api" and login["second_factor"] == "totp", login
    # The portal's own address is nobody's: not in a column, not as the user's.
    assert all(PORTAL_SERVER not in (e.ip, e.user_agent) for e in rows)
    assert [n.get("ip") for n in await notices(runtime, uid, "method.enabled")] == \
        [HOME["StepUp-End-User-IP"]]
    assert (await notices(runtime, uid, "method.enabled"))[0]["device"] == \
        "Firefox 128, Windows"


async def test_without_the_headers_the_users_address_is_unknown(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    r = await verify(client, key, uid, "totp", code(secret, clock))
    assert r.status_code == 200, r.text
    rows = await events(runtime, uid)
    assert all(e.ip is None for e in rows), [(e.event, e.ip) for e in rows]
    # Nothing can be told about the device: the check is recorded, no device notice.
    assert "code.verified" in {e.event for e in rows}
    assert "login.succeeded" not in {e.event for e in rows}
    assert await notices(runtime, uid, "login.new_device") == []
    assert all("ip" not in n for n in await notices(runtime, uid, "method.enabled"))


@pytest.mark.parametrize(("header", "value"), [
    ("StepUp-End-User-IP", "not-an-ip"),
    ("StepUp-End-User-IP", "198.51.100.300"),
    ("StepUp-End-User-Agent", "x" * 513),
])
async def test_a_bad_end_user_header_is_a_validation_error(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime,
        header: str, value: str) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    body = problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()),
                                context={header: value}), 422, "validation_error")
    assert body["field"] == header, body
    # Refused before the code was looked at: it still works.
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text


async def test_a_headless_login_from_a_new_device_is_told(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)  # created without the user's context
    secret = await enrol_totp(client, key, uid, clock)
    r = await verify(client, key, uid, "totp", code(secret, clock), context=HOME)
    assert r.status_code == 200, r.text
    told = await notices(runtime, uid, "login.new_device")
    assert len(told) == 1 and told[0]["ip"] == "198.51.100.23", told
    assert told[0]["device"] == "Firefox 128, Windows"
    # The same network and browser (updated since): a known device, nothing to tell.
    neighbour = {"StepUp-End-User-IP": "198.51.100.99",
                 "StepUp-End-User-Agent": FIREFOX.replace("128.0", "129.0")}
    r = await verify(client, key, uid, "totp", code(secret, clock), context=neighbour)
    assert r.status_code == 200, r.text
    assert len(await notices(runtime, uid, "login.new_device")) == 1
    # Another network: a new device again.
    away = {**HOME, "StepUp-End-User-IP": "2001:db8::7"}
    r = await verify(client, key, uid, "totp", code(secret, clock), context=away)
    assert r.status_code == 200, r.text
    told = await notices(runtime, uid, "login.new_device")
    assert [n["ip"] for n in told] == ["198.51.100.23", "2001:db8::7"]
    flags = [e.data.get("new_device") for e in await events(runtime, uid)
             if e.event == "login.succeeded"]
    assert flags == [True, None, True]


async def test_the_sign_up_device_is_known(client: httpx.AsyncClient, key: str,
                                           clock: FrozenClock, runtime: Runtime) -> None:
    r = await client.post("/api/v1/users", json={"email": "kim@example.com"},
                          headers={**h(key), **HOME})
    assert r.status_code == 201, r.text
    uid = str(r.json()["id"])
    secret = await enrol_totp(client, key, uid, clock)
    r = await verify(client, key, uid, "totp", code(secret, clock), context=HOME)
    assert r.status_code == 200, r.text
    assert await notices(runtime, uid, "login.new_device") == []
    # Only the user agent forwarded: still enough to tell a device (another browser).
    r = await verify(client, key, uid, "totp", code(secret, clock),
                     context={"StepUp-End-User-Agent": "curl/8.5.0"})
    assert r.status_code == 200, r.text
    told = await notices(runtime, uid, "login.new_device")
    assert len(told) == 1 and "ip" not in told[0], told
