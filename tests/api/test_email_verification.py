"""The account e-mail is verified at sign-up (issue 16, item 2): the message carries a
code and a link; ``POST /me/email/verification`` sends it again and ``…/confirm`` takes
the code; only a verified account e-mail confirms a withdrawal that no method protects.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, notifications
from stepup.services.runtime import Actor, Runtime
from stepup.store import models as m
from tests.api.helpers import (
    EMAIL,
    auth,
    follow_verification_link,
    problem,
    session_for,
    sign_up,
    verification_link,
)
from tests.api.ops_support import (
    OPS,
    WITHDRAWAL,
    app_with,
    challenge,
    confirm,
    last_code,
    pin,
    started,
    totp_for_withdrawal,
)

SEND = "/api/v1/me/email/verification"
CONFIRM = "/api/v1/me/email/verification/confirm"
USERS = "/api/v1/users"
DAY = 24 * 3600


async def unverified(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    await sign_up(client, email, verify_email=False)
    return await session_for(client, email)


async def messages(client: httpx.AsyncClient, to: str = EMAIL) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/dev/outbox", params={"to": to})
    return list(r.json()["messages"])  # newest first


def code_in(body: str) -> str:
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


async def verified(client: httpx.AsyncClient, token: str) -> bool:
    me = (await client.get("/api/v1/me", headers=auth(token))).json()
    return bool(me["identities"]["email_verified"])


async def events(runtime: Runtime, name: str) -> list[m.AuditEvent]:
    async with runtime.db() as db:
        q = select(m.AuditEvent).where(m.AuditEvent.event == name)
        return list((await db.execute(q)).scalars().all())


async def test_sign_up_sends_a_code_and_a_link_and_the_code_verifies(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await unverified(client)
    [message] = await messages(client)
    assert message["channel"] == "email"
    assert "/email/verify/" in message["body"] and "24 hours" in message["body"]
    assert not await verified(client, token)
    # The link is hashed at rest: neither the link's secret nor the code is stored.
    link = await verification_link(client, EMAIL)
    assert link is not None
    async with runtime.db() as db:
        rows = (await db.execute(select(m.Challenge))).scalars().all()
    stored = " ".join(f"{r.code_hash} {r.id}" for r in rows)
    assert link.rsplit(".", 1)[1] not in stored and code_in(message["body"]) not in stored
    assert {r.channel for r in rows} == {"email", "email-link"}
    assert all((r.expires_at - r.created_at).total_seconds() == DAY for r in rows)

    problem(await client.post(CONFIRM, json={"code": "000000"}, headers=auth(token)), 400,
            "invalid_code")
    assert not await verified(client, token)
    r = await client.post(CONFIRM, json={"code": code_in(message["body"])}, headers=auth(token))
    assert r.status_code == 204, r.text
    assert await verified(client, token)
    [event] = await events(runtime, "account.email_verified")
    assert event.data["via"] == "code"
    # Told to the address (a notice), and the link of the same message is spent.
    assert await notifications.deliver_due(runtime) == 1
    assert "was verified" in (await messages(client))[0]["body"]
    page = await client.get(link)
    assert page.status_code == 400 and "no longer works" in page.text

    # Already verified: confirming again is done (204, nothing checked, nothing recorded),
    # sending again is refused.
    r = await client.post(CONFIRM, json={"code": "123456"}, headers=auth(token))
    assert r.status_code == 204
    assert len(await events(runtime, "account.email_verified")) == 1
    problem(await client.post(SEND, headers=auth(token)), 409, "email_already_verified")


async def test_the_link_verifies_only_by_its_page_post_and_only_once(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await unverified(client)
    link = await verification_link(client, EMAIL)
    assert link is not None
    # A GET (a mail scanner, a link preview) only shows the page.
    for _ in range(2):
        page = await client.get(link)
        assert page.status_code == 200 and "j***@example.com" in page.text
    assert not await verified(client, token)
    # Without the page's CSRF token: refused.
    assert (await client.post(link, data={})).status_code == 403
    assert not await verified(client, token)
    r = await follow_verification_link(client, link)
    assert "is verified" in r.text
    assert await verified(client, token)
    [event] = await events(runtime, "account.email_verified")
    assert event.data["via"] == "link"
    # Single use; a forged or truncated link is the same page.
    again = await client.get(link)
    assert again.status_code == 400 and "no longer works" in again.text
    for bad in (link[:-3] + "abc", "/email/verify/nothing", "/email/verify/" + "x" * 300):
        assert (await client.get(bad)).status_code == 400


async def test_send_again_replaces_the_message_with_a_cooldown(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await unverified(client)
    first = (await messages(client))[0]["body"]
    old_link = await verification_link(client, EMAIL)
    problem(await client.post(SEND, headers=auth(token)), 429, "resend_too_soon")
    clock.advance(61)
    r = await client.post(SEND, headers=auth(token))
    assert r.status_code == 202, r.text
    assert r.json() == {"sent_to": "j***@example.com", "expires_in": DAY, "resend_in": 60}
    second = (await messages(client))[0]["body"]
    assert second != first and await verification_link(client, EMAIL) != old_link
    # The older code and link stopped working.
    assert old_link is not None and (await client.get(old_link)).status_code == 400
    problem(await client.post(CONFIRM, json={"code": code_in(first)}, headers=auth(token)),
            400, "invalid_code")
    r = await client.post(CONFIRM, json={"code": code_in(second)}, headers=auth(token))
    assert r.status_code == 204, r.text


async def test_code_and_link_expire_after_a_day(client: httpx.AsyncClient,
                                                clock: FrozenClock) -> None:
    token = await unverified(client)
    body = (await messages(client))[0]["body"]
    link = await verification_link(client, EMAIL)
    assert link is not None
    clock.advance(DAY + 1)
    assert (await client.get(link)).status_code == 400
    token = await session_for(client)  # the first session has expired too
    problem(await client.post(CONFIRM, json={"code": code_in(body)}, headers=auth(token)),
            400, "code_expired")
    assert not await verified(client, token)


async def test_wrong_codes_are_limited_like_every_code(client: httpx.AsyncClient) -> None:
    token = await unverified(client)
    right = code_in((await messages(client))[0]["body"])
    wrong = "111111" if right != "111111" else "222222"
    for _ in range(4):
        problem(await client.post(CONFIRM, json={"code": wrong}, headers=auth(token)), 400,
                "invalid_code")
    problem(await client.post(CONFIRM, json={"code": wrong}, headers=auth(token)), 423,
            "method_locked")
    problem(await client.post(CONFIRM, json={"code": right}, headers=auth(token)), 423,
            "method_locked")
    assert not await verified(client, token)


# --- what confirms a withdrawal ----------------------------------------------------------

async def test_an_unverified_email_confirms_no_withdrawal(client: httpx.AsyncClient,
                                                          clock: FrozenClock) -> None:
    token = await unverified(client)
    r = await client.post(OPS, json={"type": "withdrawal", "details": WITHDRAWAL},
                          headers=auth(token))
    body = problem(r, 409, "no_method_for_operation")
    assert "verify your e-mail address" in body["detail"]
    r = await client.post(OPS, json={"type": "withdrawal", "details": WITHDRAWAL},
                          headers={**auth(token), "Accept-Language": "ru"})
    assert "подтвердите адрес электронной почты" in problem(r, 409,
                                                           "no_method_for_operation")["detail"]
    # A method switched on for withdrawals confirms, verified e-mail or not.
    await totp_for_withdrawal(client, token, clock)
    op_id = await started(client, token)
    r = await pin(client, token, op_id)
    assert r.status_code == 200 and r.json()["methods"] == [{"type": "totp"}], r.text
    problem(await challenge(client, token, op_id, "email"), 409, "method_not_enabled")


async def test_once_verified_the_account_email_confirms(client: httpx.AsyncClient) -> None:
    token = await unverified(client)
    link = await verification_link(client, EMAIL)
    assert link is not None
    await follow_verification_link(client, link)
    op_id = await started(client, token)
    r = await pin(client, token, op_id)
    assert r.json()["methods"] == [{"type": "email", "destination": "j***@example.com"}]
    assert (await challenge(client, token, op_id, "email")).status_code == 202
    r = await confirm(client, token, op_id, "email", await last_code(client, EMAIL, "email"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


async def test_policy_if_protected_is_unchanged(settings: Settings, runtime: Runtime,
                                                clock: FrozenClock) -> None:
    async with app_with(settings, clock, withdrawal_code="if_protected") as (client, _rt):
        token = await unverified(client)
        op_id = await started(client, token)
        r = await pin(client, token, op_id)
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


# --- the integration API: the portal vouches -------------------------------------------

@pytest.fixture
async def key(runtime: Runtime) -> str:
    _row, token = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    return token


async def test_a_portal_vouches_for_its_users_email(client: httpx.AsyncClient, key: str,
                                                    runtime: Runtime) -> None:
    h = auth(key)
    plain = (await client.post(USERS, json={"email": "ann@example.com", "pin": "417293"},
                               headers=h)).json()
    assert plain["email"] == "ann@example.com"
    r = await client.post(f"{USERS}/{plain['id']}/operations", headers=h,
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    problem(r, 409, "no_method_for_operation")

    r = await client.post(USERS, headers=h, json={"email": "bob@example.com", "pin": "417293",
                                                  "email_verified": True})
    bob = r.json()["id"]
    assert (await client.get(f"{USERS}/{bob}", headers=h)).json()["identities"][
        "email_verified"] is True
    [event] = await events(runtime, "account.email_verified")
    assert event.user_id == bob and event.data["via"] == "app"
    r = await client.post(f"{USERS}/{bob}/operations", headers=h,
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    assert r.status_code == 201, r.text
    # A new address is not verified: nothing confirms a withdrawal any more.
    r = await client.patch(f"{USERS}/{bob}", headers=h, json={"email": "bob2@example.com"})
    assert r.json()["identities"]["email_verified"] is False
    r = await client.post(f"{USERS}/{bob}/operations", headers=h,
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    problem(r, 409, "no_method_for_operation")
    # PATCH vouches for the new address.
    r = await client.patch(f"{USERS}/{bob}", headers=h, json={"email_verified": True})
    assert r.status_code == 200 and r.json()["identities"]["email_verified"] is True
    r = await client.post(f"{USERS}/{bob}/operations", headers=h,
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    assert r.status_code == 201 and r.json()["status"] == "pin_required", r.text
    r = await client.post(f"{USERS}/{bob}/operations/{r.json()['id']}/pin", headers=h,
                          json={"pin": "417293"})
    assert r.json()["methods"] == [{"type": "email", "destination": "b***@example.com"}]


async def test_an_operation_whose_email_lost_its_verification_is_refused_at_the_pin(
        client: httpx.AsyncClient, key: str) -> None:
    h = auth(key)
    r = await client.post(USERS, headers=h, json={"email": "bob@example.com", "pin": "417293",
                                                  "email_verified": True})
    bob = r.json()["id"]
    r = await client.post(f"{USERS}/{bob}/operations", headers=h,
                          json={"type": "withdrawal", "details": WITHDRAWAL})
    assert r.status_code == 201 and r.json()["status"] == "pin_required", r.text
    op_id = r.json()["id"]
    await client.patch(f"{USERS}/{bob}", headers=h, json={"email_verified": False})
    r = await client.post(f"{USERS}/{bob}/operations/{op_id}/pin", headers=h,
                          json={"pin": "417293"})
    problem(r, 409, "no_method_for_operation")


async def test_the_sign_up_message_is_not_charged_but_send_again_is(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    token = await unverified(client)
    me = (await client.get("/api/v1/me", headers=auth(token))).json()

    async def charged() -> int:
        async with runtime.db() as db:
            rows = (await db.execute(select(m.RateCounter).where(
                m.RateCounter.key == f"send-user:{me['id']}"))).scalars().all()
        return sum(r.count for r in rows)

    assert await charged() == 0  # bounded by the sign-up limit instead
    clock.advance(61)
    assert (await client.post(SEND, headers=auth(token))).status_code == 202
    assert await charged() == 1
