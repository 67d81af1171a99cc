"""Webhooks per app: every security event of an app's user reaches the app's own URL,
signed with the app's secret and naming the user's external id; users of an app without
a URL fall back to the global one; a portal lists its own deliveries, redelivers a failed
one and sends itself a test event; an operation that expires is announced exactly once,
however many workers sweep. Real local HTTP receivers; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.errors import ValidationFailed
from stepup.services import apikeys, apps, recovery, recovery_requests, staff, webhooks
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, WebhookDelivery
from tests.api.helpers import PIN, auth, problem, totp_now, wrong_totp
from tests.api.oob_support import production_settings
from tests.api.ops_support import WITHDRAWAL, last_code, totp_on_behalf
from tests.support.providers import ProviderServer, Received, Scripted

APP_SECRET = "acme-whsec-0123456789"
GLOBAL_SECRET = "global-whsec-9876543210"
PHONE = "+79161234567"
ACTOR = Actor(name="test")
END_USER = {"StepUp-End-User-IP": "198.51.100.23"}
SECURITY_KINDS = {"method.enabled", "method.disabled", "method.locked", "account.locked",
                  "recovery.requested", "recovery.approved", "recovery.cancelled"}


@dataclass
class Setup:
    client: httpx.AsyncClient
    rt: Runtime
    acme: str  # a key of "acme": its own webhook URL and secret
    beta: str  # a key of "beta": no URL of its own, so the global one


@pytest.fixture
def hooks() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def fallback() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
async def setup(settings: Settings, runtime: Runtime, clock: FrozenClock,
                hooks: ProviderServer, fallback: ProviderServer) -> AsyncIterator[Setup]:
    from tests.api.ops_support import app_with

    async with app_with(settings, clock, webhook_url=f"{fallback.url}/global",
                        webhook_secret=GLOBAL_SECRET, webhook_max_attempts=2,
                        method_lock_after=3, account_lock_after=8, pin_lock_after=2
                        ) as (client, rt):
        await apps.create(rt, ACTOR, "acme", display_name="Acme Broker",
                          url="https://acme.example")
        await apps.configure(rt, ACTOR, "acme", webhook_url=f"{hooks.url}/acme",
                             webhook_secret=APP_SECRET)
        _row, acme = await apikeys.create(rt, "acme", "app", ACTOR, app="acme")
        await apps.create(rt, ACTOR, "beta", display_name="Beta Bank")
        _row, beta = await apikeys.create(rt, "beta", "app", ACTOR, app="beta")
        yield Setup(client, rt, acme, beta)


def signed(hit: Received, secret: str) -> dict[str, Any]:
    """What a receiver written from the docs does: check the MAC, then read the JSON."""
    parts = dict(p.split("=", 1) for p in hit.headers["stepup-signature"].split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + hit.body, hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), parts["v1"]), hit.headers
    body: dict[str, Any] = hit.json
    assert hit.headers["stepup-event-id"] == body["id"]
    assert hit.headers["stepup-event"] == body["type"]
    return body


async def new_user(client: httpx.AsyncClient, key: str, external_id: str | None = "client-1",
                   email: str = "jane@example.com") -> str:
    # The portal vouches for its client's e-mail (it verified the address itself).
    body: dict[str, Any] = {"email": email, "pin": PIN, "email_verified": True}
    if external_id:
        body["external_id"] = external_id
    r = await client.post("/api/v1/users", json=body, headers=auth(key))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def verify(s: Setup, uid: str, code: str, purpose: str = "login") -> httpx.Response:
    return await s.client.post(f"/api/v1/users/{uid}/verify", json={
        "method": "totp", "code": code, "purpose": purpose},
        headers={**auth(s.acme), **END_USER})


async def operation(s: Setup, uid: str) -> str:
    r = await s.client.post(f"/api/v1/users/{uid}/operations", json={
        "type": "withdrawal", "details": WITHDRAWAL}, headers=auth(s.acme))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def count(rt: Runtime, event: str) -> int:
    async with rt.db() as db:
        q = select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.event == event)
        return int((await db.execute(q)).scalar_one())


async def test_every_event_goes_to_the_apps_url_signed_with_its_secret(
        setup: Setup, clock: FrozenClock, hooks: ProviderServer,
        fallback: ProviderServer) -> None:
    s = setup
    uid = await new_user(s.client, s.acme)
    secret = await totp_on_behalf(s.client, s.acme, uid, clock, withdrawal=True)
    # SMS: the phone number must never appear in an event.
    base = f"/api/v1/users/{uid}/methods/sms/enrollment"
    r = await s.client.post(base, json={"phone": PHONE}, headers=auth(s.acme))
    assert r.status_code == 202, r.text
    r = await s.client.post(f"{base}/confirm", json={
        "code": await last_code(s.client, PHONE, "sms")}, headers=auth(s.acme))
    assert r.status_code == 200, r.text
    clock.advance(61)  # the resend cooldown
    r = await s.client.post(f"/api/v1/users/{uid}/methods/sms/challenge", headers=auth(s.acme))
    assert r.status_code == 202, r.text
    r = await s.client.post(f"/api/v1/users/{uid}/methods/sms/disable", json={
        "code": await last_code(s.client, PHONE, "sms")}, headers=auth(s.acme))
    assert r.status_code == 200, r.text

    # A confirmed operation, and one left to expire after its PIN locked.
    confirmed = await operation(s, uid)
    r = await s.client.post(f"/api/v1/users/{uid}/operations/{confirmed}/pin",
                            json={"pin": PIN}, headers=auth(s.acme))
    assert r.status_code == 200, r.text
    r = await verify(s, uid, totp_now(secret, clock), purpose=confirmed)
    assert r.status_code == 200 and r.json()["valid"], r.text
    clock.advance(30)
    left = await operation(s, uid)
    for _ in range(2):
        r = await s.client.post(f"/api/v1/users/{uid}/operations/{left}/pin",
                                json={"pin": "000000"}, headers={**auth(s.acme), **END_USER})
    problem(r, 423, "method_locked")

    # Wrong codes lock the method, then the account.
    for _ in range(3):
        r = await verify(s, uid, wrong_totp(secret, clock))
    problem(r, 423, "method_locked")
    for _ in range(10):
        clock.advance(3601)
        r = await verify(s, uid, wrong_totp(secret, clock))
        if r.status_code == 423 and r.json()["code"] == "account_locked":
            break
    problem(r, 423, "account_locked")

    # Recovery: filed through the API, approved by two staff, cancelled by its link.
    r = await s.client.post(f"/api/v1/users/{uid}/recovery", json={
        "description": "Lost my phone", "contact": {"channel": "phone", "phone": PHONE}},
        headers={**auth(s.acme), **END_USER})
    assert r.status_code == 201, r.text
    request_id = str(r.json()["id"])
    agent = await staff.create(s.rt, ACTOR, email="agent@example.com", name="Ann",
                               role="support", password="staff-correct-horse-42")
    sup = await staff.create(s.rt, ACTOR, email="sup@example.com", name="Sam",
                             role="supervisor", password="staff-correct-horse-42")
    await recovery.record_checks(s.rt, ACTOR, agent.staff, request_id,
                                 s.rt.settings.recovery_checklist)
    await recovery.approve(s.rt, ACTOR, sup.staff, request_id)
    await recovery.cancel_by_token(s.rt, Actor(ip="198.51.100.23"),
                                   recovery_requests.cancel_token(s.rt, request_id))

    clock.advance(s.rt.settings.operation_ttl_seconds)
    assert await webhooks.expire_due(s.rt) == 1
    await webhooks.deliver_due(s.rt)
    assert fallback.received == []
    events = [signed(hit, APP_SECRET) for hit in hooks.received]
    assert all(hit.path == "/acme" for hit in hooks.received)
    kinds = {e["type"] for e in events}
    assert kinds >= SECURITY_KINDS | {"operation.confirmed", "operation.expired"}, kinds
    for e in events:
        assert e["data"]["user"] == {"id": uid, "external_id": "client-1"}
        assert e["created_at"].endswith("Z") and len(e["id"]) >= 16
    text = b" ".join(hit.body for hit in hooks.received).decode()
    for never in (PHONE, PHONE[-7:], "/recovery/cancel/", "cancel_url", secret, PIN):
        assert never not in text

    def of(kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["type"] == kind]

    assert sorted(d["method"] for d in of("method.enabled")) == ["sms", "totp"]
    assert [d["method"] for d in of("method.disabled")] == ["sms"]
    locks = {d["method"]: d for d in of("method.locked")}
    assert set(locks) == {"pin", "totp"}
    assert locks["pin"]["locked_seconds"] == s.rt.settings.pin_lock_seconds
    assert locks["totp"]["ip"] == "198.51.100.23" and locks["totp"]["locked_until"]
    [account] = of("account.locked")
    assert account["locked_seconds"] == s.rt.settings.account_lock_seconds
    [approved] = of("recovery.approved")
    assert approved["effective_at"].endswith("Z")
    [done] = of("operation.confirmed")
    assert done["operation"]["id"] == confirmed and done["receipt"]
    [gone] = of("operation.expired")
    assert gone["operation"]["id"] == left and gone["operation"]["status"] == "expired"
    assert gone["operation"]["details"] == WITHDRAWAL
    r = await s.client.get(f"/api/v1/users/{uid}/operations/{left}", headers=auth(s.acme))
    assert r.json()["status"] == "expired"


async def test_an_app_without_a_url_falls_back_to_the_global_one(
        setup: Setup, clock: FrozenClock, hooks: ProviderServer,
        fallback: ProviderServer) -> None:
    s = setup
    uid = await new_user(s.client, s.beta, external_id=None)
    await totp_on_behalf(s.client, s.beta, uid, clock)
    assert await webhooks.deliver_due(s.rt) == 1
    assert hooks.received == []
    [hit] = fallback.received
    assert hit.path == "/global"
    body = signed(hit, GLOBAL_SECRET)
    assert body["type"] == "method.enabled"
    assert body["data"]["user"] == {"id": uid, "external_id": None}
    # Listed for beta (its users' events), not for acme.
    r = await s.client.get("/api/v1/webhooks/deliveries", headers=auth(s.beta))
    assert [d["id"] for d in r.json()["deliveries"]] == [body["id"]]
    r = await s.client.get("/api/v1/webhooks/deliveries", headers=auth(s.acme))
    assert r.json() == {"deliveries": []}


async def test_a_failed_delivery_is_redelivered(setup: Setup, clock: FrozenClock,
                                                hooks: ProviderServer) -> None:
    s = setup
    uid = await new_user(s.client, s.acme)
    await totp_on_behalf(s.client, s.acme, uid, clock)
    hooks.script.extend([Scripted(500, {}), Scripted(503, {})])
    assert await webhooks.deliver_due(s.rt) == 0
    clock.advance(10)
    assert await webhooks.deliver_due(s.rt) == 0  # webhook_max_attempts = 2: given up
    r = await s.client.get("/api/v1/webhooks/deliveries", params={"status": "failed"},
                           headers=auth(s.acme))
    [failed] = r.json()["deliveries"]
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert failed["last_error"] == "HTTP 503" and "next_attempt_at" not in failed
    assert failed["url"] == f"{hooks.url}/acme"

    url = f"/api/v1/webhooks/deliveries/{failed['id']}/redeliver"
    problem(await s.client.post(url, headers=auth(s.beta)), 404, "not_found")
    problem(await s.client.post("/api/v1/webhooks/deliveries/nope/redeliver",
                                headers=auth(s.acme)), 404, "not_found")
    r = await s.client.post(url, headers={**auth(s.acme), **END_USER})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["attempts"] == 0
    assert await webhooks.deliver_due(s.rt) == 1
    assert {hit.headers["stepup-event-id"] for hit in hooks.received} == {failed["id"]}
    assert len(hooks.received) == 3
    r = await s.client.get("/api/v1/webhooks/deliveries", params={"status": "delivered"},
                           headers=auth(s.acme))
    [done] = r.json()["deliveries"]
    assert done["id"] == failed["id"] and done["delivered_at"] and done["attempts"] == 1
    async with s.rt.db() as db:
        q = select(AuditEvent).where(AuditEvent.event == "webhook.redelivered")
        [event] = (await db.execute(q)).scalars().all()
    assert event.data["delivery"] == failed["id"] and event.ip == "198.51.100.23"


async def test_deliveries_list_only_the_keys_apps_newest_first(
        setup: Setup, clock: FrozenClock) -> None:
    s = setup
    for n in range(3):
        uid = await new_user(s.client, s.acme, external_id=f"c{n}", email=f"u{n}@example.com")
        await totp_on_behalf(s.client, s.acme, uid, clock)
    other = await new_user(s.client, s.beta)
    await totp_on_behalf(s.client, s.beta, other, clock)
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await s.client.get("/api/v1/webhooks/deliveries", params=params,
                               headers=auth(s.acme))
        assert r.status_code == 200, r.text
        seen += r.json()["deliveries"]
        cursor = r.json().get("next_cursor")
        if cursor is None:
            break
    assert len(seen) == 3 and len({d["id"] for d in seen}) == 3
    assert [d["created_at"] for d in seen] == sorted((d["created_at"] for d in seen),
                                                     reverse=True)
    assert all(d["status"] == "pending" and d["event"] == "method.enabled" for d in seen)
    beta = (await s.client.get("/api/v1/webhooks/deliveries", headers=auth(s.beta))).json()
    assert len(beta["deliveries"]) == 1 and beta["deliveries"][0]["id"] not in {
        d["id"] for d in seen}
    for bad in ({"limit": 101}, {"limit": 0}, {"status": "lost"}, {"cursor": "bm9wZQ"},
                {"cursor": "!"}):
        problem(await s.client.get("/api/v1/webhooks/deliveries", params=bad,
                                   headers=auth(s.acme)), 422, "validation_error")
    problem(await s.client.get("/api/v1/webhooks/deliveries"), 401, "not_authenticated")


async def test_the_test_event(setup: Setup, hooks: ProviderServer,
                              fallback: ProviderServer) -> None:
    s = setup
    r = await s.client.post("/api/v1/webhooks/test", headers=auth(s.acme))
    assert r.status_code == 202, r.text
    assert r.json()["event"] == "webhook.test" and r.json()["url"] == f"{hooks.url}/acme"
    r2 = await s.client.post("/api/v1/webhooks/test", headers=auth(s.beta))
    assert r2.json()["url"] == f"{fallback.url}/global"
    assert await webhooks.deliver_due(s.rt) == 2
    [hit] = hooks.received
    body = signed(hit, APP_SECRET)
    assert body["id"] == r.json()["id"] and body["type"] == "webhook.test"
    assert body["data"]["app"]["name"] == "acme"
    assert signed(fallback.received[0], GLOBAL_SECRET)["data"]["app"]["name"] == "beta"


async def test_no_url_anywhere_is_a_conflict(client: httpx.AsyncClient,
                                             runtime: Runtime) -> None:
    await apps.create(runtime, ACTOR, "gamma")
    _row, key = await apikeys.create(runtime, "gamma", "app", ACTOR, app="gamma")
    problem(await client.post("/api/v1/webhooks/test", headers=auth(key)), 409,
            "webhook_not_configured")


async def test_an_expired_operation_is_announced_once_by_four_workers(
        setup: Setup, clock: FrozenClock) -> None:
    s = setup
    uid = await new_user(s.client, s.acme)
    ops = [await operation(s, uid) for _ in range(5)]
    assert await webhooks.expire_due(s.rt) == 0  # not yet
    clock.advance(s.rt.settings.operation_ttl_seconds)
    workers = [s.rt] + [Runtime.build(s.rt.settings, clock) for _ in range(3)]
    try:
        moved = await asyncio.gather(*(webhooks.expire_due(w) for w in workers * 2))
    finally:
        for w in workers[1:]:
            await w.engine.dispose()
    assert sum(moved) == 5
    assert await count(s.rt, "operation.expired") == 5
    assert await webhooks.expire_due(s.rt) == 0
    r = await s.client.post(f"/api/v1/users/{uid}/operations/{ops[0]}/pin",
                            json={"pin": PIN}, headers=auth(s.acme))
    problem(r, 409, "operation_expired")


async def test_setting_an_apps_webhook(settings: Settings, runtime: Runtime) -> None:
    await apps.create(runtime, ACTOR, "acme")
    with pytest.raises(ValidationFailed) as short:
        await apps.configure(runtime, ACTOR, "acme", webhook_url="https://a.example/h",
                             webhook_secret="too-short")
    assert short.value.field == "webhook_secret"
    with pytest.raises(ValidationFailed) as unsigned:
        await apps.configure(runtime, ACTOR, "acme", webhook_url="https://a.example/h")
    assert unsigned.value.field == "webhook_secret"
    row = await apps.configure(runtime, ACTOR, "acme", webhook_url="http://127.0.0.1:9/h",
                               webhook_secret=APP_SECRET, notices=False,
                               display_name="Acme Broker")
    assert row.webhook_url == "http://127.0.0.1:9/h" and row.notices is False
    assert row.webhook_secret_ct is not None and APP_SECRET.encode() not in row.webhook_secret_ct
    async with runtime.db() as db:
        q = select(AuditEvent).where(AuditEvent.event == "app.updated")
        [event] = (await db.execute(q)).scalars().all()
    assert sorted(event.data["fields"]) == ["display_name", "notices", "webhook_secret",
                                            "webhook_url"]
    assert APP_SECRET not in str(event.data)
    # Removing the URL removes its secret: the app's events go to the global URL again.
    row = await apps.configure(runtime, ACTOR, "acme", webhook_url="")
    assert row.webhook_url is None and row.webhook_secret_ct is None
    # Production takes https only.
    prod = Runtime.build(production_settings(settings), runtime.clock)
    try:
        with pytest.raises(ValidationFailed, match="https://"):
            await apps.configure(prod, ACTOR, "acme", webhook_url="http://a.example/h",
                                 webhook_secret=APP_SECRET)
        row = await apps.configure(prod, ACTOR, "acme", webhook_url="https://a.example/h",
                                   webhook_secret=APP_SECRET)
        assert row.webhook_url == "https://a.example/h"
    finally:
        await prod.engine.dispose()
