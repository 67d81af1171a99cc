"""The blocking client against a real ``stepup serve``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stepup_client import (
    CodeAlreadyUsed,
    Conflict,
    InvalidCode,
    MethodLocked,
    MethodNotEnabled,
    NotAuthenticated,
    NotFound,
    PinInvalid,
    StepUp,
    StepUpError,
    StepUpUnavailable,
    ValidationError,
)
from stepup_testkit import WITHDRAWAL, Authenticator, Server, email, last_code, phone


@pytest.fixture
def stepup(server: Server) -> Iterator[StepUp]:
    with StepUp(server.base_url, server.api_key) as client:
        yield client


def with_totp(stepup: StepUp, pin: str | None = None,
              protects: dict[str, bool] | None = None) -> tuple[str, Authenticator]:
    uid = stepup.create_user(email(), pin=pin).id
    start = stepup.enroll(uid, "totp")
    assert start.secret and start.otpauth_uri and start.qr_svg
    assert start.secret not in repr(start)
    app = Authenticator(start.otpauth_uri)
    method = stepup.confirm_enrollment(uid, "totp", app.code(), protects=protects)
    assert method.type == "totp" and method.enabled
    return uid, app


def test_create_user_is_safe_to_repeat(stepup: StepUp) -> None:
    address, external = email(), f"client-{email()}"
    first = stepup.create_user(address, external_id=external, language="en")
    assert first.created and first.email == address and first.external_id == external
    again = stepup.create_user(address, external_id=external)
    assert not again.created and again.id == first.id


def test_totp_verify_replay_and_lock(stepup: StepUp) -> None:
    uid, app = with_totp(stepup)
    ok = stepup.verify(uid, "totp", app.code())
    assert ok.valid and ok.method == "totp" and ok.verified_at.tzinfo is not None
    assert ok.receipt is None
    with pytest.raises(CodeAlreadyUsed) as replay:  # the same right code: not a guess
        stepup.verify(uid, "totp", app.previous())
    assert replay.value.status == 409 and replay.value.code == "code_already_used"
    assert not replay.value.retryable
    for _ in range(10):
        try:
            stepup.verify(uid, "totp", "000000")
        except InvalidCode:
            continue
        except MethodLocked as locked:
            assert locked.status == 423 and locked.code == "method_locked"
            assert locked.retry_after is not None and locked.retry_after > 0
            break
    else:
        pytest.fail("wrong codes never locked the method")
    with pytest.raises(MethodLocked):  # even the right code waits for the lock
        stepup.verify(uid, "totp", app.code())
    assert next(m for m in stepup.methods(uid) if m.type == "totp").enabled


def test_sms_enrol_challenge_verify(stepup: StepUp, server: Server) -> None:
    uid = stepup.create_user(email()).id
    number = phone()
    start = stepup.enroll(uid, "sms", phone=number)
    assert start.method == "sms" and start.sent_to and start.sent_to != number
    assert start.expires_in and start.expires_in > 0
    method = stepup.confirm_enrollment(uid, "sms", last_code(server.base_url, number))
    assert method.enabled and method.destination == start.sent_to

    sent = stepup.challenge(uid, "sms")
    assert sent.sent_to == start.sent_to and sent.method == "sms" and sent.resend_in >= 0
    code = last_code(server.base_url, number)
    assert stepup.verify(uid, "sms", code).valid
    with pytest.raises(CodeAlreadyUsed):
        stepup.verify(uid, "sms", code)
    with pytest.raises((MethodNotEnabled, Conflict)):  # TOTP sends nothing (not even enabled)
        stepup.challenge(uid, "totp")


def test_what_a_method_protects_is_chosen_with_its_first_code(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    start = stepup.enroll(uid, "totp")
    app = Authenticator(start.otpauth_uri)
    with pytest.raises(ValidationError):  # an operation StepUp does not know
        stepup.confirm_enrollment(uid, "totp", app.code(), protects={"deposit": True})
    method = stepup.confirm_enrollment(uid, "totp", app.code(),
                                       protects={"login": True, "withdrawal": True})
    assert method.enabled and method.protects == {"login": True, "withdrawal": True}
    codes = stepup.enroll(uid, "backup_codes", protects={"withdrawal": False})
    assert len(codes.codes) == 10
    listed = {m.type: m for m in stepup.methods(uid)}
    assert listed["backup_codes"].protects == {"login": False, "withdrawal": False}


def test_backup_codes(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    start = stepup.enroll(uid, "backup_codes")
    assert len(start.codes) == 10 and start.codes[0] not in repr(start)
    used = stepup.verify(uid, "backup_codes", start.codes[0])
    assert used.valid and used.backup_codes_remaining == 9
    with pytest.raises(CodeAlreadyUsed):
        stepup.verify(uid, "backup_codes", start.codes[0])
    listed = {m.type: m for m in stepup.methods(uid)}
    assert listed["backup_codes"].enabled and listed["backup_codes"].remaining == 9


def test_withdrawal_confirmed_by_verify_gets_a_receipt(stepup: StepUp) -> None:
    uid, app = with_totp(stepup)
    switched = stepup.switch(uid, "totp", app.code(), withdrawal=True)
    assert switched.protects["withdrawal"] is True
    op = stepup.create_operation(uid, "withdrawal", WITHDRAWAL)
    assert op.status == "code_required" and op.details == WITHDRAWAL
    assert "totp" in {m.type for m in op.methods}
    with pytest.raises(NotFound):
        stepup.verify(uid, "totp", "123456", purpose="0" * 32)
    done = stepup.verify(uid, "totp", app.code(), purpose=op.id)
    assert done.receipt and done.receipt.count(".") == 2
    read = stepup.operation(uid, op.id)
    assert read.status == "confirmed" and read.receipt == done.receipt
    assert read.confirmed_at is not None


def test_pin_step_and_disable(stepup: StepUp) -> None:
    # The app confirms withdrawals (an unverified e-mail confirms nothing).
    uid, app = with_totp(stepup, pin="417293", protects={"withdrawal": True})
    op = stepup.create_operation(uid, "withdrawal", WITHDRAWAL)
    assert op.status == "pin_required"
    with pytest.raises(PinInvalid):
        stepup.submit_pin(uid, op.id, "999111")
    assert stepup.submit_pin(uid, op.id, "417293").status == "code_required"
    off = stepup.disable(uid, "totp", app.code())
    assert off.type == "totp" and not off.enabled
    with pytest.raises(MethodNotEnabled):
        stepup.verify(uid, "totp", "123456")


def test_errors_name_their_problem(stepup: StepUp, server: Server) -> None:
    with pytest.raises(NotFound) as missing:
        stepup.verify("0" * 32, "totp", "123456")
    assert missing.value.status == 404 and missing.value.detail
    uid = stepup.create_user(email()).id
    with pytest.raises(ValidationError) as invalid:
        stepup.verify(uid, "totp", "123456", purpose="../x")
    assert invalid.value.status == 422 and invalid.value.field == "purpose"
    with pytest.raises(ValidationError) as too_long:
        stepup.verify(uid, "totp", "1" * 8193)  # room for a passkey's answer, no more
    assert too_long.value.field == "code" and too_long.value.problem["errors"]
    with StepUp(server.base_url, "sk_app_not-a-real-key") as wrong, \
            pytest.raises(NotAuthenticated) as refused:
        wrong.methods(uid)
    assert refused.value.status == 401 and "sk_app_not-a-real-key" not in str(refused.value)


def test_unavailable_when_nothing_listens(nowhere: str) -> None:
    with StepUp(nowhere, "sk_app_x", timeout=2, backoff=0.01) as stepup, \
            pytest.raises(StepUpUnavailable) as down:
        stepup.verify("u", "totp", "123456")
    assert isinstance(down.value, StepUpError) and down.value.status == 0
    assert down.value.code == "service_unavailable" and down.value.retryable
