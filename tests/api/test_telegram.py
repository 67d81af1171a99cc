"""Telegram codes through the API: the Gateway (a local stand-in) gets our code, its
failures are told to the user like any channel's, its signed delivery reports are taken
at /hooks/delivery/telegram, and a withdrawal is confirmed with a Telegram code."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services import notifications
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    verify,
)
from tests.api.oob_support import RU_MOBILE, UK_MOBILE, UK_MOBILE_MASKED, Stack
from tests.api.ops_support import (
    PHONE,
    challenge,
    confirm,
    last_code,
    last_message,
    oob_for_withdrawal,
    past_pin,
)
from tests.support.providers import ProviderServer, Scripted

TOKEN = "AAGb-gateway-token"
PUBLIC = "https://mfa.example.test"


def sent(n: int = 1) -> Scripted:
    return Scripted(200, {"ok": True, "result": {
        "request_id": f"req{n}", "phone_number": UK_MOBILE.lstrip("+"), "request_cost": 0.01,
        "delivery_status": {"status": "sent", "updated_at": 1}}})


def refused(error: str, status: int = 400) -> Scripted:
    return Scripted(status, {"ok": False, "error": error})


@pytest.fixture
async def gateway(start_stack: StartStack, api: ProviderServer) -> Stack:
    """The app with the Gateway configured (its base URL the local stand-in)."""
    return await start_stack(public_url=PUBLIC, telegram_gateway_token=TOKEN,
                             telegram_gateway_base_url=api.url)


async def user(stack: Stack) -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": EMAIL, "password": "violet-harbour-7-lanterns", "pin": "417293"})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, EMAIL)


def gateway_code(stack: Stack) -> str:
    req = stack.api.received[-1]
    assert req.path == "/sendVerificationMessage"
    return str(req.json["code"])


async def test_telegram_codes_go_through_the_gateway(gateway: Stack) -> None:
    stack = gateway
    token = await user(stack)
    stack.api.script.append(sent(1))
    r = await stack.enroll(token, "telegram", phone=UK_MOBILE)
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == UK_MOBILE_MASKED
    (req,) = stack.api.received
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    (code_row,) = await stack.codes()
    body = req.json
    assert body == {"phone_number": UK_MOBILE, "code": body["code"],
                    "ttl": stack.rt.settings.code_ttl_seconds, "payload": code_row.id,
                    "callback_url": f"{PUBLIC}/hooks/delivery/telegram"}
    assert body["code"].isdigit() and len(body["code"]) == 6
    (event,) = await stack.audit("code.sent")
    assert event.data["provider"] == "telegram" and event.data["method"] == "telegram"

    r = await stack.confirm(token, "telegram", gateway_code(stack))
    assert r.status_code == 200 and r.json()["enabled"] is True, r.text
    # The notice names the method; Telegram itself carries no notices.
    await notifications.deliver_due(stack.rt)
    (mail,) = stack.mail_to(EMAIL)
    assert "Telegram codes were enabled on your account." in str(mail["Subject"])
    assert len(stack.api.received) == 1

    stack.clock.advance(61)
    lt = await login_token(stack.client)
    stack.api.script.append(sent(2))
    assert (await stack.login_challenge(lt, "telegram")).status_code == 202
    assert (await verify(stack.client, lt, "telegram", gateway_code(stack))).status_code == 200


async def test_a_number_telegram_cannot_reach_is_told_and_costs_nothing(
        gateway: Stack) -> None:
    stack = gateway
    token = await user(stack)
    stack.api.script.append(refused("PHONE_NUMBER_INVALID"))
    body = problem(await stack.enroll(token, "telegram", phone=UK_MOBILE), 422,
                   "invalid_destination")
    assert "Telegram" in body["detail"] and "PHONE_NUMBER" not in body["detail"]
    assert (await method_view(stack.client, token, "telegram"))["pending"] is False
    assert await stack.codes() == []
    (event,) = await stack.audit("delivery.failed")
    assert event.data["provider"] == "telegram" and "PHONE_NUMBER_INVALID" in event.data["reason"]
    # The caps and the cooldown were refunded: another number right away.
    stack.api.script.append(sent(2))
    assert (await stack.enroll(token, "telegram", phone=RU_MOBILE)).status_code == 202


async def test_a_gateway_failure_is_a_502_that_names_telegram(gateway: Stack) -> None:
    stack = gateway
    token = await user(stack)
    stack.api.script.append(refused("ACCESS_TOKEN_INVALID", 401))
    body = problem(await stack.enroll(token, "telegram", phone=UK_MOBILE), 502,
                   "delivery_failed")
    assert "by Telegram" in body["detail"] and TOKEN not in json.dumps(body)
    assert len(stack.api.received) == 1


async def test_telegram_counts_against_the_budget_of_billed_codes(
        start_stack: StartStack) -> None:
    stack = await start_stack(sms_budget_per_hour=1)
    token = await user(stack)
    assert (await stack.enroll(token, "telegram", phone=UK_MOBILE)).status_code == 202
    body = problem(await stack.enroll(token, "sms", phone=RU_MOBILE), 429, "send_cap_reached")
    assert "Telegram" in body["detail"]


# --- delivery reports -------------------------------------------------------------------

def report(code_id: str, status: str = "read") -> bytes:
    return json.dumps({"request_id": "req1", "phone_number": UK_MOBILE.lstrip("+"),
                       "request_cost": 0.01, "payload": code_id,
                       "delivery_status": {"status": status, "updated_at": 1}}).encode()


def signature(body: bytes, at: datetime, token: str = TOKEN) -> dict[str, str]:
    stamp = str(int(at.timestamp()))
    key = hashlib.sha256(token.encode()).digest()
    return {"X-Request-Timestamp": stamp, "Content-Type": "application/json",
            "X-Request-Signature": hmac.new(key, f"{stamp}\n".encode() + body,
                                            hashlib.sha256).hexdigest()}


async def reports_counted(client: httpx.AsyncClient, status: str) -> float:
    text = (await client.get("/metrics")).text
    line = f'stepup_delivery_reports_total{{provider="telegram",status="{status}"}}'
    return sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line))


async def test_a_signed_report_is_taken_and_counted(gateway: Stack) -> None:
    stack = gateway
    before = await reports_counted(stack.client, "read")
    body = report("c0de")
    r = await stack.client.post("/hooks/delivery/telegram", content=body,
                                headers=signature(body, stack.clock.now()))
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    assert await reports_counted(stack.client, "read") == before + 1


@pytest.mark.parametrize("forge", ["other-token", "stale", "other-body", "unsigned"])
async def test_a_report_the_gateway_did_not_sign_is_refused(gateway: Stack,
                                                            forge: str) -> None:
    stack = gateway
    body, now = report("c0de"), stack.clock.now()
    headers: dict[str, Any] = {
        "other-token": signature(body, now, token="guessed"),
        "stale": signature(body, now.replace(year=now.year - 1)),
        "other-body": signature(report("c0de", "revoked"), now),
        "unsigned": {"Content-Type": "application/json"},
    }[forge]
    problem(await stack.client.post("/hooks/delivery/telegram", content=body,
                                    headers=headers), 401, "not_authenticated")


async def test_without_the_gateway_there_is_no_telegram_hook(client: httpx.AsyncClient
                                                             ) -> None:
    body = report("c0de")
    problem(await client.post("/hooks/delivery/telegram", content=body,
                              headers={"Content-Type": "application/json"}), 404, "not_found")


# --- a withdrawal, in development (the outbox) ----------------------------------------------

async def test_a_withdrawal_is_confirmed_with_a_telegram_code(client: httpx.AsyncClient,
                                                              clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    await oob_for_withdrawal(client, token, clock, "telegram", PHONE)
    op_id = await past_pin(client, token, amount="1250.50", currency="USDT")
    r = await challenge(client, token, op_id, "telegram")
    assert r.status_code == 202, r.text
    text = await last_message(client, PHONE, "telegram")
    assert "withdrawal of 1250.5 USDT" in text  # the outbox: Telegram words its own
    r = await confirm(client, token, op_id, "telegram", await last_code(client, PHONE,
                                                                        "telegram"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["method"] == "telegram"
