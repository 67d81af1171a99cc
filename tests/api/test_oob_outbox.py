"""The development outbox: with no provider configured in development, codes are stored
and listed at ``GET /api/v1/dev/outbox``; production has no such route and refuses it."""

from __future__ import annotations

import re

import httpx
import pytest

from stepup.config import ConfigurationError, Settings
from stepup.web.app import create_app
from tests.api.conftest import StartStack
from tests.api.helpers import EMAIL, PIN, auth, problem, session_for, sign_up
from tests.api.oob_support import RU_MOBILE, RU_MOBILE_MASKED, UK_MOBILE, production_settings

OUTBOX = "/api/v1/dev/outbox"


async def test_codes_go_to_the_outbox_without_providers(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    for channel, params in (("sms", {"phone": RU_MOBILE}), ("whatsapp", {"phone": UK_MOBILE}),
                            ("email", {})):
        r = await client.post(f"/api/v1/me/methods/{channel}/enrollment",
                              json={"pin": PIN, **params}, headers=auth(token))
        assert r.status_code == 202, r.text

    r = await client.get(OUTBOX, params={"to": RU_MOBILE})
    assert r.status_code == 200
    (msg,) = r.json()["messages"]
    assert msg["channel"] == "sms" and msg["to"] == RU_MOBILE
    assert msg["created_at"].endswith("Z")
    code = re.search(r"#(\d{6})$", msg["body"])
    assert code, msg["body"]
    r = await client.post("/api/v1/me/methods/sms/enrollment/confirm",
                          json={"code": code.group(1)}, headers=auth(token))
    assert r.status_code == 200 and r.json()["destination"] == RU_MOBILE_MASKED

    r = await client.get(OUTBOX, params={"to": EMAIL})
    mail, verification = r.json()["messages"]  # newest first: the sign-up's came first
    assert mail["channel"] == "email" and mail["subject"]
    assert "/email/verify/" in verification["body"]
    r = await client.get(OUTBOX, params={"to": UK_MOBILE})
    assert [m["channel"] for m in r.json()["messages"]] == ["whatsapp"]
    r = await client.get(OUTBOX)
    assert len(r.json()["messages"]) == 4
    r = await client.get(OUTBOX, params={"to": "nobody@example.com"})
    assert r.json() == {"messages": []}


@pytest.mark.parametrize("typed", [f"{RU_MOBILE}", "+7 916 123-45-67", " +79161234567 ",
                                   "79161234567"])
async def test_the_filter_takes_a_number_as_typed(client: httpx.AsyncClient,
                                                   typed: str) -> None:
    await sign_up(client)
    token = await session_for(client)
    await client.post("/api/v1/me/methods/sms/enrollment",
                      json={"pin": PIN, "phone": RU_MOBILE}, headers=auth(token))
    r = await client.get(OUTBOX, params={"to": typed})
    assert [m["to"] for m in r.json()["messages"]] == [RU_MOBILE], typed


async def test_a_raw_plus_in_the_query_string_still_matches(client: httpx.AsyncClient
                                                             ) -> None:
    """``?to=+7916…`` typed in a browser arrives as a space."""
    await sign_up(client)
    token = await session_for(client)
    await client.post("/api/v1/me/methods/sms/enrollment",
                      json={"pin": PIN, "phone": RU_MOBILE}, headers=auth(token))
    r = await client.get(f"{OUTBOX}?to={RU_MOBILE}")
    assert [m["to"] for m in r.json()["messages"]] == [RU_MOBILE]
    r = await client.get(f"{OUTBOX}?to=Jane@Example.com")
    # Nothing but the sign-up's e-mail verification was mailed, and no error.
    assert ["/email/verify/" in m["body"] for m in r.json()["messages"]] == [True]


async def test_the_email_filter_ignores_case(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    await client.post("/api/v1/me/methods/email/enrollment", json={"pin": PIN},
                      headers=auth(token))
    r = await client.get(OUTBOX, params={"to": "Jane@Example.COM"})
    assert [m["to"] for m in r.json()["messages"]] == [EMAIL, EMAIL]  # and the sign-up's


async def test_there_is_no_outbox_in_production(start_stack: StartStack,
                                                settings: Settings) -> None:
    stack = await start_stack(settings_obj=production_settings(settings))
    r = await stack.client.get(OUTBOX)
    problem(r, 404, "not_found")
    r = await stack.client.get(OUTBOX, params={"to": RU_MOBILE})
    assert r.status_code == 404
    assert (await stack.client.get("/dev/outbox")).status_code == 404
    openapi = (await stack.client.get("/openapi.json")).json()
    assert not any(p.startswith("/api/v1/dev") for p in openapi["paths"])


async def test_production_refuses_the_outbox_as_a_provider(settings: Settings) -> None:
    for field in ("sms_provider", "whatsapp_provider"):
        bad = production_settings(settings).model_copy(update={field: "outbox"})
        with pytest.raises(ConfigurationError, match="outbox"):
            create_app(bad, migrate_on_start=False)


async def test_the_development_outbox_route_is_documented(client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()
    assert "/api/v1/dev/outbox" in openapi["paths"]
