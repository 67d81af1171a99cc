"""The integration API for the portal that embeds StepUp: API keys of role ``app``,
users created or fetched by external id, their methods, and operations created for a
user that the user confirms through ``/me/operations``."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import ApiKey, AuditEvent
from tests.api.helpers import PIN, auth, problem, session_for, sign_up, totp_now
from tests.api.ops_support import WITHDRAWAL, app_with, totp_on_behalf

USERS = "/api/v1/users"
CLIENT = {"email": "client8812@example.com", "external_id": "client-8812"}


@pytest.fixture
async def app_key(runtime: Runtime) -> str:
    _row, token = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    return token


async def app_key_id(runtime: Runtime, token: str) -> str:
    async with runtime.db() as db:
        q = select(ApiKey.id).where(ApiKey.key_hash == hashlib.sha256(token.encode()).digest())
        return str((await db.execute(q)).scalar_one())


async def _create(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await client.post(USERS, json=body, headers=auth(key))


async def _new_user(client: httpx.AsyncClient, key: str, **extra: Any) -> dict[str, Any]:
    # The portal vouches for its client's e-mail (it verified the address itself).
    r = await _create(client, key, **{**CLIENT, "email_verified": True, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


# --- who may call ------------------------------------------------------------------------

async def test_calls_without_a_valid_app_key_are_refused(client: httpx.AsyncClient,
                                                         runtime: Runtime) -> None:
    await sign_up(client)
    session = await session_for(client)
    _row, support = await apikeys.create(runtime, "desk", "support", Actor(name="test"))
    revoked_row, revoked = await apikeys.create(runtime, "old", "app", Actor(name="test"))
    await apikeys.revoke(runtime, revoked_row.id, Actor(name="test"))

    calls = [("POST", USERS, CLIENT), ("GET", f"{USERS}/x/methods", None),
             ("POST", f"{USERS}/x/operations", {"type": "withdrawal", "details": WITHDRAWAL}),
             ("GET", f"{USERS}/x/operations/y", None)]
    for verb, url, body in calls:
        problem(await client.request(verb, url, json=body), 401, "not_authenticated")
        for token in (session, support, revoked, "sk_app_made-up", "Basic x"):
            r = await client.request(verb, url, json=body, headers=auth(token))
            problem(r, 401, "not_authenticated")
    r = await client.post(USERS, json=CLIENT, headers=auth(support))
    assert "role 'app'" in problem(r, 401, "not_authenticated")["detail"]


async def test_keys_are_stored_hashed_and_record_their_last_use(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    row, token = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    assert token.startswith("sk_app_")

    async def stored() -> ApiKey:
        async with runtime.db() as db:
            key = await db.get(ApiKey, row.id, populate_existing=True)
            assert key is not None
            return key

    key = await stored()
    assert key.last_used_at is None
    assert key.key_hash == hashlib.sha256(token.encode()).digest()  # the key itself: nowhere
    assert (await _create(client, token, **CLIENT)).status_code == 201
    first = (await stored()).last_used_at
    assert first is not None and first.replace(tzinfo=None) == clock.now().replace(tzinfo=None)

    clock.advance(10)  # within a minute: not rewritten on every call
    assert (await _create(client, token, **CLIENT)).status_code == 200
    assert (await stored()).last_used_at == first
    clock.advance(60)
    assert (await _create(client, token, **CLIENT)).status_code == 200
    later = (await stored()).last_used_at
    assert later is not None and later - first == timedelta(seconds=70)


# --- users ---------------------------------------------------------------------------------

async def test_create_or_fetch_a_user_by_external_id(client: httpx.AsyncClient,
                                                     app_key: str) -> None:
    created = await _new_user(client, app_key, language="ru")
    assert created["external_id"] == "client-8812" and created["language"] == "ru"
    assert created["email"] == CLIENT["email"] and created["verification_grade"] == 0

    again = await _create(client, app_key, **CLIENT)
    assert again.status_code == 200 and again.json() == created
    # Details that differ are a conflict to act on (PATCH), never silently ignored.
    r = await _create(client, app_key, email="new@example.com", external_id="client-8812")
    assert problem(r, 409, "user_conflict")["field"] == "email"
    r = await _create(client, app_key, **CLIENT, language="en")
    assert problem(r, 409, "user_conflict")["field"] == "language"
    # The same e-mail with another external id is a conflict, not a takeover.
    r = await _create(client, app_key, email=CLIENT["email"], external_id="client-9999")
    assert problem(r, 409, "user_conflict")["field"] == "email"
    # An e-mail and an external id of two different users: neither of them.
    other = await _create(client, app_key, email="john@example.com", external_id="client-2")
    assert other.status_code == 201
    r = await _create(client, app_key, email="john@example.com", external_id="client-8812")
    body = problem(r, 409, "user_conflict")
    assert created["id"] not in r.text and other.json()["id"] not in r.text, body

    problem(await _create(client, app_key, email="not-an-email"), 422, "validation_error")
    problem(await _create(client, app_key, email="a@example.com", language="xx"), 422,
            "validation_error")
    problem(await _create(client, app_key, email="b@example.com", pin="12"), 422,
            "validation_error")


async def test_a_pin_given_again_must_be_the_users_pin(client: httpx.AsyncClient,
                                                       app_key: str) -> None:
    created = await _new_user(client, app_key, pin=PIN)
    again = await _create(client, app_key, **CLIENT, pin=PIN)
    assert again.status_code == 200 and again.json()["id"] == created["id"]
    r = await _create(client, app_key, **CLIENT, pin="902116")
    assert problem(r, 409, "user_conflict")["field"] == "pin"


async def test_a_users_methods(client: httpx.AsyncClient, app_key: str,
                               clock: FrozenClock) -> None:
    user = await _new_user(client, app_key, pin=PIN)
    r = await client.get(f"{USERS}/{user['id']}/methods", headers=auth(app_key))
    assert r.status_code == 200, r.text
    assert not [m for m in r.json()["methods"] if m["enabled"]]

    await totp_on_behalf(client, app_key, user["id"], clock, withdrawal=True)
    r = await client.get(f"{USERS}/{user['id']}/methods", headers=auth(app_key))
    totp = next(m for m in r.json()["methods"] if m["type"] == "totp")
    assert totp["enabled"] is True and totp["protects"]["withdrawal"] is True
    problem(await client.get(f"{USERS}/nobody/methods", headers=auth(app_key)), 404,
            "not_found")


# --- operations for a user -----------------------------------------------------------------

async def test_an_operation_created_by_the_app_is_confirmed_through_the_api(
        client: httpx.AsyncClient, app_key: str, clock: FrozenClock, runtime: Runtime
) -> None:
    user = await _new_user(client, app_key, pin=PIN)
    secret = await totp_on_behalf(client, app_key, user["id"], clock, withdrawal=True)

    r = await client.post(f"{USERS}/{user['id']}/operations", headers=auth(app_key),
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    assert r.status_code == 201, r.text
    op = r.json()
    assert op["status"] == "pin_required" and op["details"] == WITHDRAWAL
    status_url = f"{USERS}/{user['id']}/operations/{op['id']}"
    assert (await client.get(status_url, headers=auth(app_key))).json()["status"] == (
        "pin_required")

    # The portal's own pages ask the PIN and the code and pass them on.
    r = await client.post(f"{status_url}/pin", json={"pin": PIN}, headers=auth(app_key))
    assert r.status_code == 200, r.text
    assert (await client.get(status_url, headers=auth(app_key))).json()["status"] == (
        "code_required")
    r = await client.post(f"{USERS}/{user['id']}/verify", headers=auth(app_key),
                          json={"method": "totp", "code": totp_now(secret, clock),
                                "purpose": op["id"]})
    assert r.status_code == 200, r.text

    seen = (await client.get(status_url, headers=auth(app_key))).json()
    assert seen["status"] == "confirmed" and seen["method"] == "totp"
    assert seen["receipt"] == r.json()["receipt"]

    async with runtime.db() as db:
        q = select(AuditEvent).where(AuditEvent.event == "operation.created")
        event = (await db.execute(q)).scalar_one()
    key_id = await app_key_id(runtime, app_key)
    assert event.actor == f"app:{key_id}" and event.data["by"] == f"app:{key_id}"


async def test_the_app_sees_only_the_users_own_operations(client: httpx.AsyncClient,
                                                          app_key: str) -> None:
    jane = await _new_user(client, app_key, pin=PIN)
    r = await _create(client, app_key, email="john@example.com", external_id="client-2")
    john = r.json()
    r = await client.post(f"{USERS}/{jane['id']}/operations", headers=auth(app_key),
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    op_id = r.json()["id"]
    problem(await client.get(f"{USERS}/{john['id']}/operations/{op_id}",
                             headers=auth(app_key)), 404, "not_found")
    problem(await client.post(f"{USERS}/nobody/operations", headers=auth(app_key),
                              json={"type": "withdrawal", "details": WITHDRAWAL}),
            404, "not_found")
    r = await client.post(f"{USERS}/{jane['id']}/operations", headers=auth(app_key),
                          json={"type": "withdrawal", "details": {**WITHDRAWAL,
                                                                  "amount": 0.1}})
    assert problem(r, 422, "validation_error")["field"] == "details.amount"


async def test_a_user_without_a_pin_goes_straight_to_the_code(client: httpx.AsyncClient,
                                                              app_key: str) -> None:
    user = await _new_user(client, app_key)
    r = await client.post(f"{USERS}/{user['id']}/operations", headers=auth(app_key),
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "code_required"
    # Policy "always": the account e-mail gets the code.
    assert r.json()["methods"] == [{"type": "email", "destination": "c***@example.com"}]


async def test_an_operation_nothing_could_confirm_is_refused(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    """Policy if_protected, no PIN, no protecting method: a clear problem, not an
    operation that stays open forever (nor one confirmed without the user)."""
    async with app_with(settings, clock, withdrawal_code="if_protected") as (client, rt):
        _row, key = await apikeys.create(rt, "portal", "app", Actor(name="test"))
        user = await _new_user(client, key)
        r = await client.post(f"{USERS}/{user['id']}/operations", headers=auth(key),
                              json={"type": "withdrawal", "details": WITHDRAWAL})
        assert "nothing could confirm" in problem(r, 409, "conflict")["detail"]
