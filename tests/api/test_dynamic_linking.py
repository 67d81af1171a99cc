"""Dynamic linking (PSD2 RTS art. 5): a security code confirms only the operation it was
sent or entered for, and only with the details it was shown with."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from sqlalchemy import update

from stepup.domain.clock import FrozenClock
from stepup.domain.jws import b64url_decode
from stepup.services.runtime import Runtime
from stepup.store.models import Operation
from tests.api.helpers import auth, problem, session_for, sign_up, totp_now
from tests.api.ops_support import (
    OPS,
    PHONE,
    WITHDRAWAL,
    challenge,
    confirm,
    last_code,
    last_message,
    oob_for_withdrawal,
    past_pin,
    read,
    totp_for_withdrawal,
)


async def _user(client: httpx.AsyncClient) -> str:
    await sign_up(client)
    return await session_for(client)


def _claims(receipt: str) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(receipt.split(".")[1])))


async def test_a_code_sent_for_one_operation_does_not_confirm_another(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    await oob_for_withdrawal(client, token, clock, "sms", PHONE)
    a = await past_pin(client, token, amount="0.25")
    b = await past_pin(client, token, amount="5")

    assert (await challenge(client, token, a, "sms")).status_code == 202
    assert "0.25 BTC" in await last_message(client, PHONE, "sms")
    code_a = await last_code(client, PHONE, "sms")

    # Entered for B (no code sent for B yet), and again once B has its own code.
    problem(await confirm(client, token, b, "sms", code_a), 400, "invalid_code")
    clock.advance(61)
    assert (await challenge(client, token, b, "sms")).status_code == 202
    assert "5 BTC" in await last_message(client, PHONE, "sms")
    code_b = await last_code(client, PHONE, "sms")
    if code_a != code_b:  # one chance in a million they are the same six digits
        problem(await confirm(client, token, b, "sms", code_a), 400, "invalid_code")
    assert (await read(client, token, b))["status"] == "code_required"

    # Each code still confirms its own operation: B's code did not retire A's.
    r = await confirm(client, token, a, "sms", code_a)
    assert r.status_code == 200, r.text
    assert r.json()["details"]["amount"] == "0.25"
    r = await confirm(client, token, b, "sms", code_b)
    assert r.status_code == 200, r.text
    assert r.json()["details"]["amount"] == "5"
    # And neither code serves again.
    third = await past_pin(client, token)
    problem(await confirm(client, token, third, "sms", code_a), 400, "invalid_code")
    problem(await confirm(client, token, third, "sms", code_b), 400, "invalid_code")


async def test_a_totp_code_entered_for_one_operation_is_not_reused_for_another(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    a = await past_pin(client, token)
    b = await past_pin(client, token, destination="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
    code = totp_now(secret, clock)
    assert (await confirm(client, token, a, "totp", code)).status_code == 200
    body = problem(await confirm(client, token, b, "totp", code), 409, "code_already_used")
    assert "already used" in body["detail"]
    assert (await read(client, token, b))["status"] == "code_required"
    clock.advance(30)
    r = await confirm(client, token, b, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text


async def test_details_cannot_be_changed_through_the_api(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    token = await _user(client)
    secret = await totp_for_withdrawal(client, token, clock)
    op_id = await past_pin(client, token)
    changed = {**WITHDRAWAL, "amount": "25"}
    for verb in ("PATCH", "PUT"):
        r = await client.request(verb, f"{OPS}/{op_id}", json={"details": changed},
                                 headers=auth(token))
        problem(r, 405, "method_not_allowed")
    # Details smuggled into the confirmation are refused, not applied.
    r = await client.post(f"{OPS}/{op_id}/confirm", headers=auth(token), json={
        "method": "totp", "code": totp_now(secret, clock), "details": changed})
    problem(r, 422, "validation_error")
    r = await client.post(f"{OPS}/{op_id}/pin", headers=auth(token),
                          json={"pin": "417293", "amount": "25"})
    problem(r, 422, "validation_error")

    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["details"] == WITHDRAWAL
    operation = _claims(r.json()["receipt"])["operation"]
    assert operation["details"] == WITHDRAWAL
    canonical = json.dumps({"type": "withdrawal", "details": WITHDRAWAL}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    assert operation["digest"] == hashlib.sha256(canonical.encode()).hexdigest()


async def test_details_changed_behind_the_service_are_not_confirmed(
        client: httpx.AsyncClient, clock: FrozenClock, runtime: Runtime) -> None:
    """If the stored details change after the code was sent (a bug, a hand-edited row),
    the code no longer confirms: what was shown is what gets confirmed, or nothing."""
    token = await _user(client)
    await oob_for_withdrawal(client, token, clock, "sms", PHONE)
    op_id = await past_pin(client, token)
    assert (await challenge(client, token, op_id, "sms")).status_code == 202
    code = await last_code(client, PHONE, "sms")
    async with runtime.db() as db:
        await db.execute(update(Operation).where(Operation.id == op_id).values(
            details={**WITHDRAWAL, "destination": "bc1qattacker000000000000000000000000zz"}))
        await db.commit()
    body = problem(await confirm(client, token, op_id, "sms", code), 409, "conflict")
    assert "changed" in body["detail"]
    assert (await read(client, token, op_id))["status"] != "confirmed"


async def test_each_message_names_its_own_operation(client: httpx.AsyncClient,
                                                    clock: FrozenClock) -> None:
    token = await _user(client)
    await oob_for_withdrawal(client, token, clock, "whatsapp", PHONE)
    a = await past_pin(client, token, amount="1.5", currency="ETH",
                       destination="0x52908400098527886E0F7030069857D2E4169EE7")
    assert (await challenge(client, token, a, "whatsapp")).status_code == 202
    text = await last_message(client, PHONE, "whatsapp")
    assert "1.5 ETH" in text and "0x52908400098527886E0F7030069857D2E4169EE7" in text
    short = await past_pin(client, token, amount="10", currency="EUR", destination="DE89-1")
    clock.advance(61)
    assert (await challenge(client, token, short, "whatsapp")).status_code == 202
    text = await last_message(client, PHONE, "whatsapp")
    # An ISO currency is shown with its minor units (stepup.formats): 10 EUR reads 10.00.
    assert "10.00 EUR" in text and "DE89-1" in text
