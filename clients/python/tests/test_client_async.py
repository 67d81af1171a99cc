"""The ``async`` client against the same real ``stepup serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stepup_client import (
    AsyncStepUp,
    CodeAlreadyUsed,
    Conflict,
    InvalidCode,
    MethodLocked,
    MethodNotEnabled,
    NotAuthenticated,
    NotFound,
    PinInvalid,
    StepUpUnavailable,
)
from stepup_testkit import WITHDRAWAL, Authenticator, Server, email, last_code, phone

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def stepup(server: Server) -> AsyncIterator[AsyncStepUp]:
    async with AsyncStepUp(server.base_url, server.api_key) as client:
        yield client


async def with_totp(stepup: AsyncStepUp, pin: str | None = None) -> tuple[str, Authenticator]:
    uid = (await stepup.create_user(email(), pin=pin)).id
    start = await stepup.enroll(uid, "totp")
    assert start.otpauth_uri
    app = Authenticator(start.otpauth_uri)
    assert (await stepup.confirm_enrollment(uid, "totp", app.code())).enabled
    return uid, app


async def test_create_user_is_safe_to_repeat(stepup: AsyncStepUp) -> None:
    address = email()
    first = await stepup.create_user(address, external_id=address)
    again = await stepup.create_user(address, external_id=address)
    assert first.created and not again.created and again.id == first.id


async def test_totp_verify_replay_and_lock(stepup: AsyncStepUp) -> None:
    uid, app = await with_totp(stepup)
    assert (await stepup.verify(uid, "totp", app.code())).valid
    with pytest.raises(CodeAlreadyUsed) as replay:  # the same right code: not a guess
        await stepup.verify(uid, "totp", app.previous())
    assert isinstance(replay.value, Conflict) and not replay.value.retryable
    for _ in range(10):
        try:
            await stepup.verify(uid, "totp", "000000")
        except InvalidCode:
            continue
        except MethodLocked as locked:
            assert locked.retry_after is not None and locked.retry_after > 0
            break
    else:
        pytest.fail("wrong codes never locked the method")


async def test_sms_enrol_challenge_verify(stepup: AsyncStepUp, server: Server) -> None:
    uid = (await stepup.create_user(email())).id
    number = phone()
    start = await stepup.enroll(uid, "sms", phone=number)
    assert start.sent_to and start.resend_in is not None
    assert (await stepup.confirm_enrollment(uid, "sms",
                                            last_code(server.base_url, number))).enabled
    sent = await stepup.challenge(uid, "sms", purpose="login")
    assert sent.sent_to == start.sent_to
    code = last_code(server.base_url, number)
    assert (await stepup.verify(uid, "sms", code)).valid
    with pytest.raises(CodeAlreadyUsed):
        await stepup.verify(uid, "sms", code)


async def test_backup_codes(stepup: AsyncStepUp) -> None:
    uid = (await stepup.create_user(email())).id
    codes = (await stepup.enroll(uid, "backup_codes")).codes
    assert len(codes) == 10
    assert (await stepup.verify(uid, "backup_codes", codes[1])).backup_codes_remaining == 9
    with pytest.raises(CodeAlreadyUsed):
        await stepup.verify(uid, "backup_codes", codes[1])


async def test_withdrawal_with_pin_confirmed_by_verify(stepup: AsyncStepUp) -> None:
    uid, app = await with_totp(stepup, pin="417293")
    assert (await stepup.switch(uid, "totp", app.code(), withdrawal=True)).protects[
        "withdrawal"]
    op = await stepup.create_operation(uid, "withdrawal", WITHDRAWAL)
    assert op.status == "pin_required"
    with pytest.raises(PinInvalid):
        await stepup.submit_pin(uid, op.id, "999111")
    assert (await stepup.submit_pin(uid, op.id, "417293")).status == "code_required"
    done = await stepup.verify(uid, "totp", app.code(), purpose=op.id)
    assert done.receipt and done.receipt.count(".") == 2
    read = await stepup.operation(uid, op.id)
    assert read.status == "confirmed" and read.details == WITHDRAWAL


async def test_disable(stepup: AsyncStepUp) -> None:
    uid, app = await with_totp(stepup)
    assert not (await stepup.disable(uid, "totp", app.code())).enabled
    with pytest.raises(MethodNotEnabled):
        await stepup.verify(uid, "totp", "123456")


async def test_errors(stepup: AsyncStepUp, server: Server, nowhere: str) -> None:
    with pytest.raises(NotFound):
        await stepup.methods("0" * 32)
    async with AsyncStepUp(server.base_url, "sk_app_wrong") as wrong:
        with pytest.raises(NotAuthenticated):
            await wrong.create_user(email())
    async with AsyncStepUp(nowhere, "sk_app_x", timeout=2, retries=0) as down:
        with pytest.raises(StepUpUnavailable) as unreachable:
            await down.verify("u", "totp", "123456")
    assert unreachable.value.code == "service_unavailable" and unreachable.value.retryable
