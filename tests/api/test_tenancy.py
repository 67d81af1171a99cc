"""Apps are tenants: an app's API keys see and touch only the app's users, the people
who signed up on StepUp's own pages belong to the built-in app ``portal``, and the same
e-mail in two apps is two people. Every answer to a key tells its quota."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stepup.services import apikeys, apps
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import User
from tests.api.helpers import PIN, auth, problem, sign_up
from tests.api.ops_support import WITHDRAWAL

USERS = "/api/v1/users"
JANE = {"email": "jane@example.com", "external_id": "client-1"}


@pytest.fixture
async def keys(runtime: Runtime) -> tuple[str, str]:
    """A key of the app "default" and one of the app "acme"."""
    _row, first = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    await apps.create(runtime, Actor(name="test"), "acme", display_name="Acme Broker",
                      url="https://acme.example")
    _row, second = await apikeys.create(runtime, "acme", "app", Actor(name="test"),
                                        app="acme")
    return first, second


async def _user(client: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    r = await client.post(USERS, json={**JANE, **body}, headers=auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_the_same_email_in_two_apps_is_two_users(client: httpx.AsyncClient,
                                                       keys: tuple[str, str],
                                                       runtime: Runtime) -> None:
    first, second = keys
    a = await _user(client, first, pin=PIN)
    b = await _user(client, second)
    assert a["id"] != b["id"] and a["email"] == b["email"]
    async with runtime.db() as db:
        rows = {u.id: u.app_id for u in (await db.get(User, a["id"]), await db.get(User, b["id"]))
                if u is not None}
    acme = await _app_id(runtime, "acme")
    assert rows[b["id"]] == acme and rows[a["id"]] != acme


async def _app_id(runtime: Runtime, name: str) -> str:
    for row in await apps.list_all(runtime):
        if row.name == name:
            return row.id
    raise AssertionError(name)


async def test_a_key_cannot_see_or_touch_another_apps_user(client: httpx.AsyncClient,
                                                           keys: tuple[str, str]) -> None:
    first, second = keys
    uid = (await _user(client, first, pin=PIN))["id"]
    calls = [("GET", f"{USERS}/{uid}/methods", None),
             ("POST", f"{USERS}/{uid}/methods/totp/enrollment", {}),
             ("POST", f"{USERS}/{uid}/methods/backup_codes/enrollment", {}),
             ("POST", f"{USERS}/{uid}/challenge", {"method": "email", "purpose": "login"}),
             ("POST", f"{USERS}/{uid}/verify", {"method": "totp", "code": "123456"}),
             ("POST", f"{USERS}/{uid}/operations",
              {"type": "withdrawal", "details": WITHDRAWAL}),
             ("GET", f"{USERS}/{uid}/operations/x", None)]
    for verb, url, body in calls:
        r = await client.request(verb, url, json=body, headers=auth(second))
        other = problem(r, 404, "not_found")
        # Exactly the answer of an id that does not exist: nothing to tell them apart.
        missing = problem(await client.request(verb, url.replace(uid, "nobody"), json=body,
                                               headers=auth(second)), 404, "not_found")
        assert other == missing
    # Its own key still works.
    assert (await client.get(f"{USERS}/{uid}/methods", headers=auth(first))).status_code == 200


async def test_self_registered_people_are_out_of_every_keys_reach(
        client: httpx.AsyncClient, keys: tuple[str, str]) -> None:
    first, _ = keys
    me = await sign_up(client)  # on StepUp's own pages: the app "portal"
    r = await client.post(f"{USERS}/{me['id']}/methods/totp/enrollment", json={},
                          headers=auth(first))
    problem(r, 404, "not_found")
    # The same e-mail through a key is a new user of that app, never the person above.
    made = await _user(client, first)
    assert made["id"] != me["id"]
    r = await client.post("/api/v1/login", json={"email": me["email"],
                                                 "password": "violet-harbour-7-lanterns"})
    assert r.status_code == 200 and r.json()["status"] == "authenticated"


async def test_every_answer_to_a_key_carries_its_quota(client: httpx.AsyncClient,
                                                       runtime: Runtime) -> None:
    _row, key = await apikeys.create(runtime, "small", "app", Actor(name="test"),
                                     rate_per_minute=3)
    r = await client.post(USERS, json=JANE, headers=auth(key))
    assert r.status_code == 201
    assert r.headers["ratelimit-policy"] == '"key";q=3;w=60'
    assert r.headers["ratelimit"].startswith('"key";r=2;t=')
    r = await client.get(f"{USERS}/nobody/methods", headers=auth(key))
    problem(r, 404, "not_found")
    assert r.headers["ratelimit"].startswith('"key";r=1;t=')
    await client.get(f"{USERS}/nobody/methods", headers=auth(key))
    r = await client.get(f"{USERS}/nobody/methods", headers=auth(key))
    body = problem(r, 429, "api_quota_exceeded")
    assert body["retryable"] is True and int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit"].startswith('"key";r=0;t=')
    # Session calls are not a key's: no quota to tell.
    r = await client.get("/api/v1/me")
    assert "ratelimit" not in r.headers


async def test_the_end_users_address_must_be_an_address(client: httpx.AsyncClient,
                                                        keys: tuple[str, str]) -> None:
    first, _ = keys
    r = await client.post(USERS, json=JANE, headers={**auth(first),
                                                      "StepUp-End-User-IP": "10.0.0.300"})
    assert problem(r, 422, "validation_error")["field"] == "StepUp-End-User-IP"
    r = await client.post(USERS, json=JANE, headers={**auth(first),
                                                      "StepUp-End-User-IP": " 2001:db8::7 "})
    assert r.status_code == 201, r.text


async def test_a_key_of_the_app_portal_serves_stepups_own_pages(
        client: httpx.AsyncClient, runtime: Runtime, keys: tuple[str, str]) -> None:
    """An operator who sends its clients to StepUp's pages makes its key in ``portal``:
    that key sees the people who signed up there, and only its users have passwords."""
    _row, portal = await apikeys.create(runtime, "pages", "app", Actor(name="test"),
                                        app="portal")
    me = await sign_up(client)
    r = await client.post(USERS, json={"email": me["email"]}, headers=auth(portal))
    assert r.status_code == 200 and r.json()["id"] == me["id"]
    password = "amber-kestrel-41-orchards"
    r = await client.post(USERS, json={"email": "bob@example.com", "password": password},
                          headers=auth(portal))
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/login", json={"email": "bob@example.com",
                                                 "password": password})
    assert r.json()["status"] == "authenticated"
    first, _ = keys
    r = await client.post(USERS, json={"email": "eve@example.com", "password": password},
                          headers=auth(first))
    assert problem(r, 422, "validation_error")["field"] == "password"


async def test_the_openapi_describes_the_integration_headers(client: httpx.AsyncClient
                                                             ) -> None:
    doc = (await client.get("/openapi.json")).json()
    verify = doc["paths"]["/api/v1/users/{user_id}/verify"]["post"]
    names = {p["name"] for p in verify["parameters"] if p["in"] == "header"}
    assert {"StepUp-End-User-IP", "StepUp-End-User-Agent", "Idempotency-Key"} <= names
    assert "RateLimit" in verify["responses"]["200"]["headers"]
    read = doc["paths"]["/api/v1/users/{user_id}"]["get"]
    assert "Idempotency-Key" not in {p["name"] for p in read["parameters"]}
    assert "Idempotency-Key" not in str(doc["paths"]["/api/v1/me/methods"])
