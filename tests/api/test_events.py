"""Security events for the user (``/me/events``) and for support (``/admin/events``,
API keys of role ``support`` only): newest first, filtered, never a secret."""

from __future__ import annotations

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from tests.api.helpers import (
    PIN,
    auth,
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    verify,
    wrong_totp,
)

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")


async def key(runtime: Runtime, role: str) -> str:
    _, token = await apikeys.create(runtime, f"{role} key", role, Actor(name="cli"))
    return token


@pytest.fixture
async def two_users(client: httpx.AsyncClient, clock: FrozenClock) -> dict[str, str]:
    """jane: signs up, enables TOTP, fails a code at login; omar: signs up 20 min later."""
    jane = await sign_up(client, "jane@example.com")
    token = await session_for(client, "jane@example.com")
    secret = await enable_totp(client, token, clock)
    lt = await login_token(client, "jane@example.com")
    r = await client.post("/api/v1/login/verify", headers={"User-Agent": CHROME}, json={
        "login_token": lt, "method": "totp", "code": wrong_totp(secret, clock)})
    assert r.status_code == 400
    clock.advance(20 * 60)  # within jane's session idle time
    omar = await sign_up(client, "omar@example.com")
    return {"jane": jane["id"], "omar": omar["id"], "jane_token": token}


async def test_me_events_are_my_own_newest_first_without_secrets(
        client: httpx.AsyncClient, two_users: dict[str, str]) -> None:
    r = await client.get("/api/v1/me/events", headers=auth(two_users["jane_token"]))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert [e["event"] for e in events] == [
        "code.failed", "login.password_passed", "method.enabled", "method.enrollment_started",
        "login.succeeded", "account.email_verified", "code.sent", "account.created"]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    failed = events[0]
    assert failed["method"] == "totp" and failed["purpose"] == "login"
    assert failed["ip"] == "203.0.113.7"
    assert failed["user_agent"] == "Chrome 126, Linux"  # a summary, not the whole string
    assert failed["details"] == {"reason": "invalid_code"}
    assert failed["created_at"].startswith("2026-11-22T12:00:30")
    assert set(failed) == {"id", "event", "created_at", "ip", "user_agent", "method",
                           "purpose", "details"}
    assert PIN not in r.text and "hash" not in r.text

    r = await client.get("/api/v1/me/events?limit=2", headers=auth(two_users["jane_token"]))
    assert [e["event"] for e in r.json()["events"]] == ["code.failed", "login.password_passed"]
    r = await client.get(f"/api/v1/me/events?before={events[1]['id']}&limit=1",
                         headers=auth(two_users["jane_token"]))
    assert [e["event"] for e in r.json()["events"]] == ["method.enabled"]
    problem(await client.get("/api/v1/me/events?limit=0",
                             headers=auth(two_users["jane_token"])), 422, "validation_error")
    problem(await client.get("/api/v1/me/events"), 401, "not_authenticated")


async def test_admin_events_filters(client: httpx.AsyncClient, runtime: Runtime,
                                    two_users: dict[str, str]) -> None:
    support = auth(await key(runtime, "support"))
    r = await client.get("/api/v1/admin/events", params={"user_id": two_users["jane"]},
                         headers=support)
    assert r.status_code == 200, r.text
    jane = r.json()["events"]
    # (8: the sign-up's e-mail verification sent and followed as well.)
    assert len(jane) == 8 and {e["user_id"] for e in jane} == {two_users["jane"]}
    assert jane[0]["user_agent"] == CHROME and jane[0]["actor"] == "user"
    assert jane[0]["data"] == {"method": "totp", "purpose": "login", "reason": "invalid_code"}

    r = await client.get("/api/v1/admin/events", params={"event": "account.created"},
                         headers=support)
    assert [e["user_id"] for e in r.json()["events"]] == [two_users["omar"],
                                                          two_users["jane"]]
    r = await client.get("/api/v1/admin/events", params={"event": "login."}, headers=support)
    assert {e["event"] for e in r.json()["events"]} == {"login.succeeded",
                                                       "login.password_passed"}
    # Time: omar signed up 20 minutes later.
    r = await client.get("/api/v1/admin/events", params={
        "since": "2026-11-22T12:10:00Z", "event": "account.created"}, headers=support)
    assert [e["user_id"] for e in r.json()["events"]] == [two_users["omar"]]
    r = await client.get("/api/v1/admin/events", params={
        "until": "2026-11-22T12:10:00+00:00", "user_id": two_users["omar"]}, headers=support)
    assert r.json()["events"] == []
    r = await client.get("/api/v1/admin/events", params={"limit": 3}, headers=support)
    assert len(r.json()["events"]) == 3
    # Events without an account (the API keys made above) are there too.
    r = await client.get("/api/v1/admin/events", params={"event": "apikey.created"},
                         headers=support)
    assert r.json()["events"][0]["user_id"] is None
    problem(await client.get("/api/v1/admin/events", params={"since": "yesterday"},
                             headers=support), 422, "validation_error")


async def test_admin_events_need_a_support_key(client: httpx.AsyncClient, runtime: Runtime,
                                               two_users: dict[str, str]) -> None:
    problem(await client.get("/api/v1/admin/events"), 401, "not_authenticated")
    app_key = auth(await key(runtime, "app"))
    problem(await client.get("/api/v1/admin/events", headers=app_key), 401,
            "not_authenticated")
    # A user's session is not a support key either.
    problem(await client.get("/api/v1/admin/events", headers=auth(two_users["jane_token"])),
            401, "not_authenticated")
    # Revoked by its own id: under the frozen clock both keys share a creation time, so a
    # listing's order between them is the database's choice.
    row, support_key = await apikeys.create(runtime, "support key", "support", Actor(name="cli"))
    await apikeys.revoke(runtime, row.id, Actor(name="cli"))
    problem(await client.get("/api/v1/admin/events", headers=auth(support_key)), 401,
            "not_authenticated")
    # And a support key is not an app key.
    fresh = auth(await key(runtime, "support"))
    problem(await client.get(f"/api/v1/users/{two_users['jane']}/methods", headers=fresh),
            401, "not_authenticated")


async def test_verify_of_login_code_is_listed(client: httpx.AsyncClient,
                                              two_users: dict[str, str],
                                              clock: FrozenClock) -> None:
    """A successful login appears with its second factor."""
    r = await client.get("/api/v1/me/events", headers=auth(two_users["jane_token"]))
    before = len(r.json()["events"])
    lt = await login_token(client, "jane@example.com")
    r = await verify(client, lt, "totp", "000000")
    assert r.status_code == 400
    r = await client.get("/api/v1/me/events", headers=auth(two_users["jane_token"]))
    assert len(r.json()["events"]) == before + 2
