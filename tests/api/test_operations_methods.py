"""Every method that can protect withdrawal confirms one, each enabled and switched on
through the API; out-of-band messages name the amount, currency and shortened
destination (dynamic linking: the user sees what the code approves)."""

from __future__ import annotations

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from tests.api.helpers import auth, problem, session_for, sign_up, totp_now, wrong_totp
from tests.api.ops_support import (
    DESTINATION,
    PHONE,
    backup_codes_for_withdrawal,
    challenge,
    confirm,
    last_code,
    last_message,
    oob_for_withdrawal,
    outbox,
    past_pin,
    read,
    totp_for_withdrawal,
)

CODES_EMAIL = "jane.codes@example.org"
OOB = [("sms", PHONE, "+7 *** ***-45-67"), ("whatsapp", PHONE, "+7 *** ***-45-67"),
       ("email", CODES_EMAIL, "j***@example.org")]


async def _user(client: httpx.AsyncClient) -> str:
    await sign_up(client)
    return await session_for(client)


async def test_totp(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    op_id = await past_pin(client, token)
    body = problem(await challenge(client, token, op_id, "totp"), 409, "method_sends_no_codes")
    assert "does not send codes" in body["detail"]
    problem(await confirm(client, token, op_id, "totp", wrong_totp(secret, clock)), 400,
            "invalid_code")
    assert (await read(client, token, op_id))["status"] == "code_required"
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["method"] == "totp"


async def test_backup_codes(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    codes = await backup_codes_for_withdrawal(client, token)
    op_id = await past_pin(client, token)
    assert (await read(client, token, op_id))["methods"] == [{"type": "backup_codes"}]
    problem(await challenge(client, token, op_id, "backup_codes"), 409, "method_sends_no_codes")
    r = await confirm(client, token, op_id, "backup_codes", codes[0])
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "backup_codes"

    # A backup code is spent once, whatever it confirmed.
    other = await past_pin(client, token)
    problem(await confirm(client, token, other, "backup_codes", codes[0]), 409,
            "code_already_used")
    r = await confirm(client, token, other, "backup_codes", codes[1])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("channel", "to", "masked"), OOB, ids=[c for c, _t, _m in OOB])
async def test_out_of_band(client: httpx.AsyncClient, clock: FrozenClock, channel: str,
                           to: str, masked: str) -> None:
    token = await _user(client)
    await oob_for_withdrawal(client, token, clock, channel, to)
    op_id = await past_pin(client, token, amount="1250.50", currency="USDT")
    assert (await read(client, token, op_id))["methods"] == [
        {"type": channel, "destination": masked}]

    r = await challenge(client, token, op_id, channel)
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == masked and r.json()["expires_in"] > 0
    text = await last_message(client, to, channel)
    assert "1250.5 USDT" in text, text
    # Whole, though it makes the SMS longer: a shortened one is matched by a vanity address.
    assert DESTINATION in text and "…" not in text, text

    problem(await confirm(client, token, op_id, channel, "000000"), 400, "invalid_code")
    r = await confirm(client, token, op_id, channel, await last_code(client, to, channel))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["method"] == channel


async def test_sms_text_ends_with_the_autofill_line(client: httpx.AsyncClient,
                                                    clock: FrozenClock) -> None:
    token = await _user(client)
    await oob_for_withdrawal(client, token, clock, "sms", PHONE)
    op_id = await past_pin(client, token)
    assert (await challenge(client, token, op_id, "sms")).status_code == 202
    text = await last_message(client, PHONE, "sms")
    code = await last_code(client, PHONE, "sms")
    assert text.endswith(f"@testserver #{code}")
    assert "0.25 BTC" in text and DESTINATION in text


async def test_every_protecting_method_is_offered(client: httpx.AsyncClient,
                                                  clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    codes = await backup_codes_for_withdrawal(client, token)
    await oob_for_withdrawal(client, token, clock, "sms", PHONE)
    await oob_for_withdrawal(client, token, clock, "email", CODES_EMAIL)
    op_id = await past_pin(client, token)
    offered = {m["type"] for m in (await read(client, token, op_id))["methods"]}
    assert offered == {"totp", "backup_codes", "sms", "email"}

    # Any one of them confirms; each on its own operation.
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    other = await past_pin(client, token)
    r = await confirm(client, token, other, "backup_codes", codes[0])
    assert r.status_code == 200, r.text
    third = await past_pin(client, token)
    assert (await challenge(client, token, third, "sms")).status_code == 202
    r = await confirm(client, token, third, "sms", await last_code(client, PHONE, "sms"))
    assert r.status_code == 200, r.text


async def test_a_method_switched_off_for_withdrawal_is_not_offered(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    await oob_for_withdrawal(client, token, clock, "email", CODES_EMAIL)
    r = await client.patch("/api/v1/me/methods/totp",
                           json={"protects": {"withdrawal": False},
                                 "code": totp_now(secret, clock)}, headers=auth(token))
    assert r.status_code == 200, r.text
    clock.advance(30)
    op_id = await past_pin(client, token)
    assert [m["type"] for m in (await read(client, token, op_id))["methods"]] == ["email"]
    problem(await confirm(client, token, op_id, "totp", totp_now(secret, clock)), 409,
            "method_not_allowed_for_purpose")  # enabled, but switched off for withdrawal
    assert not [m for m in await outbox(client, "jane@example.com")
                if "BTC" in m["body"]]  # no fallback to the account e-mail
