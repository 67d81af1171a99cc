"""Withdrawals in two steps (seed 000/001 "Confirmation of withdrawals"): the details, then
the PIN, then a security code from a method that protects withdrawal.

Covers the order of the steps, expiry on the injected clock, the PIN lock, the
``withdrawal_code`` policy and the validation of amounts and destinations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.jws import b64url_decode
from tests.api.helpers import EMAIL, auth, enable_totp, problem, session_for, sign_up, totp_now
from tests.api.ops_support import (
    DESTINATION,
    OPS,
    WITHDRAWAL,
    app_with,
    backup_codes_for_withdrawal,
    challenge,
    confirm,
    last_code,
    last_message,
    past_pin,
    pin,
    read,
    start,
    started,
    totp_for_withdrawal,
)


async def _user(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    await sign_up(client, email)
    return await session_for(client, email)


def claims_of(receipt: str) -> dict[str, Any]:
    import json

    return dict(json.loads(b64url_decode(receipt.split(".")[1])))


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the happy path ---------------------------------------------------------------------

async def test_withdrawal_in_two_steps(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)

    r = await start(client, token)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == "withdrawal" and body["status"] == "pin_required"
    assert body["details"] == WITHDRAWAL
    assert body["summary"] == f"0.25 BTC to {DESTINATION}"
    assert _instant(body["expires_at"]) == clock.now() + timedelta(minutes=10)
    assert "methods" not in body and "receipt" not in body
    op_id = body["id"]

    r = await pin(client, token, op_id)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "code_required"
    assert r.json()["methods"] == [{"type": "totp"}]
    assert (await read(client, token, op_id))["status"] == "code_required"

    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "confirmed" and done["method"] == "totp"
    assert done["receipt"].count(".") == 2
    assert _instant(done["confirmed_at"]) == clock.now()
    claims = claims_of(done["receipt"])
    assert claims["operation"]["id"] == op_id and claims["method"] == "totp"

    seen = await read(client, token, op_id)
    assert seen["status"] == "confirmed" and seen["method"] == "totp"
    assert seen["details"] == WITHDRAWAL and seen["receipt"] == done["receipt"]


async def test_amount_is_kept_as_written_decimal(client: httpx.AsyncClient) -> None:
    token = await _user(client)
    for amount, currency, kept in [("0.00000001", "BTC", "0.00000001"),
                                   ("1500", "USD", "1500"), ("12.5", "usd", "12.5"),
                                   ("3", "JPY", "3"), ("0.000001", "USDT", "0.000001")]:
        r = await start(client, token, {"amount": amount, "currency": currency,
                                        "destination": "IBAN DE89 3704 0044 0532 0130 00"})
        assert r.status_code == 201, r.text
        assert r.json()["details"]["amount"] == kept
        assert r.json()["details"]["currency"] == currency.upper()
    r = await start(client, token, {"amount": "100", "currency": "RUB",
                                    "destination": "Иван Петров, счёт 40817 810"})
    assert r.status_code == 201, r.text
    assert r.json()["summary"] == "100 RUB to Иван Петров, счёт 40817 810"


# --- order of the steps -----------------------------------------------------------------

async def test_a_code_before_the_pin_is_refused(client: httpx.AsyncClient,
                                                clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    op_id = await started(client, token)

    body = problem(await confirm(client, token, op_id, "totp", totp_now(secret, clock)),
                   409, "pin_required")
    assert "PIN" in body["detail"]
    body = problem(await challenge(client, token, op_id, "email"), 409, "pin_required")
    assert "PIN" in body["detail"]
    assert (await read(client, token, op_id))["status"] == "pin_required"

    # The TOTP step was not spent by the refused attempt.
    assert (await pin(client, token, op_id)).status_code == 200
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text


async def test_second_confirmation_and_second_pin_are_refused(client: httpx.AsyncClient,
                                                              clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    op_id = await past_pin(client, token)
    problem(await pin(client, token, op_id), 409, "conflict")
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    receipt = r.json()["receipt"]

    clock.advance(30)
    body = problem(await confirm(client, token, op_id, "totp", totp_now(secret, clock)),
                   409, "operation_already_confirmed")
    assert "already confirmed" in body["detail"]
    problem(await pin(client, token, op_id), 409, "operation_already_confirmed")
    problem(await challenge(client, token, op_id, "email"), 409, "operation_already_confirmed")
    assert (await read(client, token, op_id))["receipt"] == receipt


async def test_operations_of_another_user_are_not_found(client: httpx.AsyncClient,
                                                        clock: FrozenClock) -> None:
    jane = await _user(client)
    op_id = await started(client, jane)
    mallory = await _user(client, "mallory@example.com")
    problem(await client.get(f"{OPS}/{op_id}", headers=auth(mallory)), 404, "not_found")
    problem(await pin(client, mallory, op_id), 404, "not_found")
    problem(await confirm(client, mallory, op_id, "email", "123456"), 404, "not_found")
    problem(await client.get(f"{OPS}/nope", headers=auth(jane)), 404, "not_found")


async def test_operations_need_a_session(client: httpx.AsyncClient) -> None:
    problem(await client.post(OPS, json={"type": "withdrawal", "details": WITHDRAWAL}),
            401, "not_authenticated")


async def test_a_method_that_does_not_protect_withdrawal_cannot_confirm_it(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await enable_totp(client, token, clock)  # protects login only
    op_id = await past_pin(client, token)
    assert (await read(client, token, op_id))["methods"] == [
        {"type": "email", "destination": "j***@example.com"}]
    # Enabled, but not switched on for withdrawal; not enabled at all.
    problem(await confirm(client, token, op_id, "totp", totp_now(secret, clock)),
            409, "method_not_allowed_for_purpose")
    problem(await confirm(client, token, op_id, "webauthn", "x"), 409, "method_not_enabled")
    problem(await challenge(client, token, op_id, "sms"), 409, "method_not_enabled")


async def test_racing_confirmations_confirm_once(client: httpx.AsyncClient,
                                                 clock: FrozenClock) -> None:
    token = await _user(client)
    codes = await backup_codes_for_withdrawal(client, token)
    op_id = await past_pin(client, token)
    answers = await asyncio.gather(*(confirm(client, token, op_id, "backup_codes", code)
                                     for code in codes[:2]))
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 200)
    assert (await read(client, token, op_id))["receipt"] == winner.json()["receipt"]


# --- expiry ------------------------------------------------------------------------------

async def test_an_operation_expires_after_ten_minutes(client: httpx.AsyncClient,
                                                      clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    waiting_pin = await started(client, token)
    waiting_code = await past_pin(client, token)

    clock.advance(599)
    assert (await read(client, token, waiting_pin))["status"] == "pin_required"
    assert (await read(client, token, waiting_code))["status"] == "code_required"
    clock.advance(2)  # 601 s after creation
    assert (await read(client, token, waiting_pin))["status"] == "expired"
    assert (await read(client, token, waiting_code))["status"] == "expired"

    body = problem(await pin(client, token, waiting_pin), 409, "operation_expired")
    assert "expired" in body["detail"]
    body = problem(await confirm(client, token, waiting_code, "totp", totp_now(secret, clock)),
                   409, "operation_expired")
    assert "expired" in body["detail"]
    problem(await challenge(client, token, waiting_code, "totp"), 409, "operation_expired")

    # A new operation with the same details works: the TOTP step was not spent.
    fresh = await past_pin(client, token)
    r = await confirm(client, token, fresh, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text


async def test_an_operation_confirmed_before_expiry_stays_confirmed(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    op_id = await past_pin(client, token)
    clock.advance(590)
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    clock.advance(601)  # past the original expiry
    assert (await read(client, token, op_id))["status"] == "confirmed"


# --- the PIN ------------------------------------------------------------------------------

async def test_five_wrong_pins_lock_the_pin(client: httpx.AsyncClient, clock: FrozenClock
                                            ) -> None:
    token = await _user(client)
    op_id = await started(client, token)
    for _ in range(4):
        problem(await pin(client, token, op_id, "000000"), 400, "pin_invalid")
    assert (await read(client, token, op_id))["status"] == "pin_required"
    body = problem(await pin(client, token, op_id, "000000"), 423, "method_locked")
    assert "PIN" in body["detail"]
    assert body["retry_after"] > 0

    # Locked: even the right PIN is refused, on this and on a new operation.
    problem(await pin(client, token, op_id), 423, "method_locked")
    other = await started(client, token)
    r = await pin(client, token, other)
    problem(r, 423, "method_locked")
    assert int(r.headers["Retry-After"]) > 0
    assert (await read(client, token, other))["status"] == "pin_required"


async def test_a_right_pin_clears_the_count(client: httpx.AsyncClient) -> None:
    token = await _user(client)
    for _ in range(2):
        op_id = await started(client, token)
        for _ in range(3):
            problem(await pin(client, token, op_id, "000000"), 400, "pin_invalid")
        assert (await pin(client, token, op_id)).status_code == 200


# --- the withdrawal_code policy -------------------------------------------------------------

async def test_policy_always_sends_the_code_to_the_account_email(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    op_id = await started(client, token)
    r = await pin(client, token, op_id)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "code_required"
    assert r.json()["methods"] == [{"type": "email", "destination": "j***@example.com"}]

    r = await challenge(client, token, op_id, "email")
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == "j***@example.com"
    text = await last_message(client, EMAIL, "email")
    assert "0.25 BTC" in text and DESTINATION in text
    r = await confirm(client, token, op_id, "email", await last_code(client, EMAIL, "email"))
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "email"
    assert claims_of(r.json()["receipt"])["method"] == "email"
    me = (await client.get("/api/v1/me", headers=auth(token))).json()
    assert me["identities"]["email_verified"] is True  # the code reached it


async def test_policy_if_protected_lets_the_pin_alone_confirm(
        settings: Settings, runtime: object, clock: FrozenClock) -> None:
    async with app_with(settings, clock, withdrawal_code="if_protected") as (client, _rt):
        token = await _user(client)
        await enable_totp(client, token, clock)  # protects login, not withdrawal
        sent = await _outbox_count(client, EMAIL)  # the sign-up's verification message
        op_id = await started(client, token)
        r = await pin(client, token, op_id)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "confirmed" and body["method"] == "pin"
        assert "methods" not in body
        claims = claims_of(body["receipt"])
        assert claims["method"] == "pin" and claims["operation"]["id"] == op_id
        assert (await read(client, token, op_id))["status"] == "confirmed"
        assert await _outbox_count(client, EMAIL) == sent


async def test_policy_if_protected_still_asks_a_protecting_method(
        settings: Settings, runtime: object, clock: FrozenClock) -> None:
    async with app_with(settings, clock, withdrawal_code="if_protected") as (client, _rt):
        token = await _user(client)
        secret = await totp_for_withdrawal(client, token, clock)
        op_id = await started(client, token)
        r = await pin(client, token, op_id)
        assert r.json()["status"] == "code_required"
        assert r.json()["methods"] == [{"type": "totp"}]
        problem(await challenge(client, token, op_id, "email"), 409, "method_not_enabled")
        r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
        assert r.status_code == 200 and r.json()["method"] == "totp"


async def _outbox_count(client: httpx.AsyncClient, to: str) -> int:
    r = await client.get("/api/v1/dev/outbox", params={"to": to})
    return len(r.json()["messages"])


# --- validation ---------------------------------------------------------------------------

BAD_DETAILS: list[tuple[str, dict[str, Any], str]] = [
    ("float", {"amount": 0.1}, "details.amount"),
    ("integer", {"amount": 1}, "details.amount"),
    ("negative", {"amount": "-1"}, "details.amount"),
    ("zero", {"amount": "0"}, "details.amount"),
    ("zeros", {"amount": "0.00"}, "details.amount"),
    ("exponent", {"amount": "1e3"}, "details.amount"),
    ("words", {"amount": "ten"}, "details.amount"),
    ("empty amount", {"amount": ""}, "details.amount"),
    ("too long amount", {"amount": "1" * 30}, "details.amount"),
    ("cents of cents", {"amount": "1.001", "currency": "USD"}, "details.amount"),
    ("satoshi fraction", {"amount": "0.123456789", "currency": "BTC"}, "details.amount"),
    ("yen fraction", {"amount": "1.5", "currency": "JPY"}, "details.amount"),
    ("missing amount", {"amount": None}, "details.amount"),
    ("currency symbol", {"currency": "$"}, "details.currency"),
    ("currency words", {"currency": "US dollar"}, "details.currency"),
    ("currency too long", {"currency": "ABCDEFGHIJKL"}, "details.currency"),
    ("currency number", {"currency": 840}, "details.currency"),
    ("missing currency", {"currency": None}, "details.currency"),
    ("empty destination", {"destination": "  "}, "details.destination"),
    ("long destination", {"destination": "x" * 201}, "details.destination"),
    ("control character", {"destination": "bc1q\nsecond line"}, "details.destination"),
    ("destination object", {"destination": {"iban": "x"}}, "details.destination"),
    # Characters that make the destination shown differ from the one confirmed.
    ("bidi override", {"destination": "bc1qar0\u202eqdm5"}, "details.destination"),
    ("zero width", {"destination": "bc1qar0\u200bsrrr"}, "details.destination"),
    ("C1 control", {"destination": "bc1qar0\x85srrr"}, "details.destination"),
    ("line separator", {"destination": "bc1qar0\u2028srrr"}, "details.destination"),
    ("unknown detail", {"memo": "hi"}, "details"),
]


@pytest.mark.parametrize(("change", "field"), [(c, f) for _n, c, f in BAD_DETAILS],
                         ids=[n for n, _c, _f in BAD_DETAILS])
async def test_invalid_details_are_refused(client: httpx.AsyncClient, change: dict[str, Any],
                                           field: str) -> None:
    token = await _user(client)
    details = {**WITHDRAWAL, **change}
    details = {k: v for k, v in details.items() if v is not None}
    body = problem(await start(client, token, details), 422, "validation_error")
    assert body["field"] == field, body


async def test_invalid_shapes_are_refused(client: httpx.AsyncClient) -> None:
    token = await _user(client)
    body = problem(await start(client, token, WITHDRAWAL, op_type="transfer"), 422,
                   "validation_error")
    assert body["field"] == "type"
    r = await client.post(OPS, json={"type": "withdrawal", "details": "0.1 BTC"},
                          headers=auth(token))
    body = problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "details"
    r = await client.post(OPS, json={"type": "withdrawal"}, headers=auth(token))
    assert problem(r, 422, "validation_error")["errors"][0]["field"] == "details"
    # "login" is an operation in the policy, but not one that carries details.
    problem(await start(client, token, {}, op_type="login"), 422, "validation_error")
