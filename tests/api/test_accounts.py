"""Sign-up (POST /accounts) and the profile (GET /me)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import PASSWORD, PIN, auth, problem, session_for, sign_up

URL = "/api/v1/accounts"


def account(**overrides: str) -> dict[str, str]:
    return {"email": "jane@example.com", "password": PASSWORD, "pin": PIN, **overrides}


async def test_sign_up_normalises_the_e_mail(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=account(email="  Jane@Example.COM "))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "jane@example.com"
    assert isinstance(body["id"], str) and body["id"]
    # The account logs in with the address however it is typed.
    assert await session_for(client, "JANE@example.com ")


async def test_same_address_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for email in ("jane@example.com", "JANE@EXAMPLE.COM"):
        body = problem(await client.post(URL, json=account(email=email)), 409, "email_taken")
        assert body.get("field") == "email"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"email": "not-an-address"}, "email"),
    ({"email": "jane@"}, "email"),
    ({"email": ""}, "email"),
    ({"password": "short-pw"}, "password"),
    ({"password": "password1234"}, "password"),
    ({"pin": "123456"}, "pin"),
    ({"pin": "000000"}, "pin"),
    ({"pin": "12345"}, "pin"),
    ({"language": "de"}, "language"),
])
async def test_invalid_sign_up_names_the_field(client: httpx.AsyncClient,
                                               overrides: dict[str, str], field: str) -> None:
    body = problem(await client.post(URL, json=account(**overrides)), 422, "validation_error")
    assert body["field"] == field, body
    # Nothing was created: the valid form still works afterwards.
    assert (await client.post(URL, json=account())).status_code == 201


async def test_language_is_kept(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json=account(language="ru"))
    assert r.status_code == 201
    token = await session_for(client)
    assert (await client.get("/api/v1/me", headers=auth(token))).json()["language"] == "ru"


async def test_me_shape(client: httpx.AsyncClient) -> None:
    created = await sign_up(client, verify_email=False)
    token = await session_for(client)
    r = await client.get("/api/v1/me", headers=auth(token))
    assert r.status_code == 200
    assert r.json() == {
        "id": created["id"], "email": "jane@example.com", "language": "en",
        "verification_grade": 0,
        "identities": {"email_verified": False, "phone_verified": False},
    }


async def test_me_needs_a_session(client: httpx.AsyncClient) -> None:
    problem(await client.get("/api/v1/me"), 401, "not_authenticated")
    problem(await client.get("/api/v1/me", headers=auth("made-up-token")), 401,
            "not_authenticated")


async def test_the_services_own_name_is_refused_as_a_password(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/accounts", json={"email": "jo@example.com",
                                                    "password": "StepUp-2026-2027",
                                                    "pin": PIN})
    body = problem(r, 422, "validation_error")
    assert "easy to guess" in body["detail"]
