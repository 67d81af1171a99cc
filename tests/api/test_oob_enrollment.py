"""Enabling SMS, e-mail and WhatsApp codes (seed 001): destination → code sent → code
entered → enabled, with the PIN checked first; the whole life of the three methods with
only SMTP and Twilio settings changed."""

from __future__ import annotations

import pytest

from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    auth,
    login,
    login_token,
    method_view,
    problem,
    session_for,
    verify,
)
from tests.api.oob_support import (
    EMAIL_MASKED,
    RU_MOBILE,
    RU_MOBILE_MASKED,
    RU_MOBILE_TYPED,
    UK_FIXED,
    UK_MOBILE,
    UK_MOBILE_MASKED,
    Stack,
    closed_port,
)


async def signed_in(stack: Stack, email: str = EMAIL, language: str = "en") -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": "violet-harbour-7-lanterns", "pin": "417293",
        "language": language})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, email)


async def test_three_channels_with_only_smtp_and_twilio_settings(
        start_stack: StartStack) -> None:
    """Enable SMS, e-mail and WhatsApp codes, log in with each, switch protections and
    disable them; an unreachable provider gives a clear 502 and nothing is enabled; the
    SMS phone verification raises the grade to 1."""
    stack = await start_stack()
    c = stack.client
    token = await signed_in(stack)
    me = await stack.me(token)
    assert me["verification_grade"] == 0
    assert me["identities"] == {"email_verified": False, "phone_verified": False}

    # SMS: the number as a person types it, normalised to E.164, shown masked.
    r = await stack.enroll(token, "sms", phone=RU_MOBILE_TYPED)
    assert r.status_code == 202, r.text
    assert r.json() == {"sent_to": RU_MOBILE_MASKED, "expires_in": 300, "resend_in": 60}
    assert (await method_view(c, token, "sms"))["enabled"] is False
    r = await stack.confirm(token, "sms", stack.last_code("sms", RU_MOBILE))
    assert r.status_code == 200, r.text
    sms = r.json()
    assert sms["enabled"] is True and sms["destination"] == RU_MOBILE_MASKED
    assert sms["protects"] == {"login": True, "withdrawal": False}  # the first method
    me = await stack.me(token)
    assert me["verification_grade"] == 1
    assert me["identities"] == {"email_verified": False, "phone_verified": True}

    # E-mail to the account's own address verifies it; WhatsApp to another phone.
    r = await stack.enroll(token, "email")
    assert r.status_code == 202 and r.json()["sent_to"] == EMAIL_MASKED, r.text
    r = await stack.confirm(token, "email", stack.last_code("email", EMAIL))
    assert r.status_code == 200 and r.json()["destination"] == EMAIL_MASKED, r.text
    assert r.json()["protects"] == {"login": False, "withdrawal": False}
    wa = await stack.enable(token, "whatsapp", UK_MOBILE, phone=UK_MOBILE)
    assert wa["destination"] == UK_MOBILE_MASKED
    me = await stack.me(token)
    assert me["identities"] == {"email_verified": True, "phone_verified": True}

    # Every delivery went through the configured providers, none to the outbox.
    assert len(stack.sms_to(RU_MOBILE)) == 1
    assert len(stack.whatsapp_to(UK_MOBILE)) == 1
    assert len(stack.mail_to(EMAIL)) == 1

    # Switch login on for e-mail and WhatsApp, each with a code from that same channel.
    stack.clock.advance(61)  # past the resend cooldown of the enrollment codes
    for channel, to in (("email", EMAIL), ("whatsapp", UK_MOBILE)):
        r = await stack.manage_challenge(token, channel)
        assert r.status_code == 202, r.text
        r = await stack.switch(token, channel, stack.last_code(channel, to), login=True)
        assert r.status_code == 200, r.text
        assert r.json()["protects"]["login"] is True

    # Log in with each channel.
    stack.clock.advance(61)
    for channel, to in (("sms", RU_MOBILE), ("email", EMAIL), ("whatsapp", UK_MOBILE)):
        r = await login(c)
        assert r.json()["status"] == "second_factor_required"
        offered = {m["type"]: m.get("destination") for m in r.json()["methods"]}
        assert offered == {"sms": RU_MOBILE_MASKED, "email": EMAIL_MASKED,
                           "whatsapp": UK_MOBILE_MASKED}
        lt = r.json()["login_token"]
        r = await stack.login_challenge(lt, channel)
        assert r.status_code == 202, r.text
        assert r.json()["method"] == channel and r.json()["sent_to"] == offered[channel]
        r = await verify(c, lt, channel, stack.last_code(channel, to))
        assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text

    # An hour later (the per-account send cap is 10 an hour), a new session by SMS.
    stack.clock.advance(3600)
    lt = await login_token(c)
    assert (await stack.login_challenge(lt, "sms")).status_code == 202
    r = await verify(c, lt, "sms", stack.last_code("sms", RU_MOBILE))
    token = r.json()["session_token"]

    # Switch withdrawal on for SMS, then disable all three.
    stack.clock.advance(61)
    r = await stack.manage_challenge(token, "sms")
    assert r.status_code == 202 and r.json()["sent_to"] == RU_MOBILE_MASKED
    r = await stack.switch(token, "sms", stack.last_code("sms", RU_MOBILE), withdrawal=True)
    assert r.status_code == 200 and r.json()["protects"] == {"login": True, "withdrawal": True}
    stack.clock.advance(61)
    for channel, to in (("sms", RU_MOBILE), ("email", EMAIL), ("whatsapp", UK_MOBILE)):
        r = await stack.manage_challenge(token, channel)
        assert r.status_code == 202, r.text
        r = await stack.disable(token, channel, stack.last_code(channel, to))
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is False
    r = await c.get("/api/v1/me/methods", headers=auth(token))
    assert not any(m["enabled"] for m in r.json()["methods"])
    r = await login(c)
    assert r.json()["status"] == "authenticated"  # nothing protects login any more
    me = await stack.me(token)
    assert me["verification_grade"] == 1  # the grade records a past verification

    # The same app with the providers unreachable: a clear 502, nothing enabled.
    down = await start_stack(twilio_base_url=f"http://127.0.0.1:{closed_port()}",
                             smtp_url=f"smtp://127.0.0.1:{closed_port()}")
    stack.clock.advance(61)
    for channel, params in (("sms", {"phone": RU_MOBILE}), ("email", {}),
                            ("whatsapp", {"phone": UK_MOBILE})):
        r = await down.enroll(token, channel, **params)
        body = problem(r, 502, "delivery_failed")
        assert "could not send" in body["detail"] and "Nothing was changed" in body["detail"]
        view = await method_view(c, token, channel)
        assert view["enabled"] is False and view["pending"] is False
    assert len(await stack.audit("delivery.failed")) == 3


async def test_the_pin_is_checked_first_and_nothing_is_sent(stack: Stack) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, "sms", pin="000000", phone=RU_MOBILE)
    problem(r, 400, "pin_invalid")
    # Even a bad number answers "wrong PIN" first: nothing about the number leaks.
    r = await stack.enroll(token, "sms", pin="000000", phone="12")
    problem(r, 400, "pin_invalid")
    r = await stack.enroll(token, "email", pin="000000")
    problem(r, 400, "pin_invalid")
    assert stack.sent_count() == 0
    assert await stack.codes() == []
    view = await method_view(stack.client, token, "sms")
    assert view["enabled"] is False and view["pending"] is False


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("phone", ["", "12", "not a number", "+7 916", UK_FIXED,
                                   "+44 20 7946 0018"])
async def test_bad_or_fixed_line_numbers_are_refused_naming_the_field(
        stack: Stack, channel: str, phone: str) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, channel, phone=phone)
    body = problem(r, 422, "validation_error")
    assert body["field"] == "phone", body
    assert stack.sent_count() == 0
    assert (await method_view(stack.client, token, channel))["pending"] is False


async def test_a_missing_phone_is_a_validation_error(stack: Stack) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, "sms")
    assert problem(r, 422, "validation_error")["field"] == "phone"


@pytest.mark.parametrize("address", ["jane", "jane@", "@example.com", "jane@@example.com",
                                     "jane doe@example.com"])
async def test_bad_email_addresses_are_refused_naming_the_field(stack: Stack,
                                                                 address: str) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, "email", email=address)
    assert problem(r, 422, "validation_error")["field"] == "email"
    assert stack.sent_count() == 0


async def test_a_us_number_of_either_kind_is_accepted(stack: Stack) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, "sms", phone="+1 (201) 555-0123")
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == "+1 ***-***-0123"
    assert len(stack.sms_to("+12015550123")) == 1


async def test_country_allow_list_refuses_other_countries(start_stack: StartStack) -> None:
    stack = await start_stack(phone_countries=["GB"])
    token = await signed_in(stack)
    for channel in ("sms", "whatsapp"):
        r = await stack.enroll(token, channel, phone=RU_MOBILE)
        body = problem(r, 422, "validation_error")
        assert body["field"] == "phone"
        assert "country" in body["detail"]
    assert stack.sent_count() == 0
    r = await stack.enroll(token, "sms", phone=UK_MOBILE)
    assert r.status_code == 202, r.text


async def test_a_default_region_reads_national_numbers(start_stack: StartStack) -> None:
    stack = await start_stack(default_phone_region="RU")
    token = await signed_in(stack)
    r = await stack.enroll(token, "sms", phone="8 916 123-45-67")
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == RU_MOBILE_MASKED
    assert len(stack.sms_to(RU_MOBILE)) == 1


async def test_another_email_address_is_not_the_verified_account_address(stack: Stack
                                                                         ) -> None:
    token = await signed_in(stack)
    r = await stack.enroll(token, "email", email="  Jane.Other@Example.ORG ")
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == "j***@example.org"
    await stack.confirm(token, "email", stack.last_code("email", "jane.other@example.org"))
    view = await method_view(stack.client, token, "email")
    assert view["enabled"] is True and view["destination"] == "j***@example.org"
    me = await stack.me(token)
    assert me["identities"]["email_verified"] is False
    assert me["verification_grade"] == 0


async def test_whatsapp_does_not_verify_the_phone(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enable(token, "whatsapp", UK_MOBILE, phone=UK_MOBILE)
    me = await stack.me(token)
    assert me["verification_grade"] == 0 and me["identities"]["phone_verified"] is False


async def test_pending_enrollment_is_masked_and_not_enabled(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    r = await stack.client.get("/api/v1/me/methods", headers=auth(token))
    assert RU_MOBILE not in r.text and "1234567" not in r.text
    sms = next(m for m in r.json()["methods"] if m["type"] == "sms")
    assert sms["enabled"] is False and sms["pending"] is True
    assert sms["destination"] == RU_MOBILE_MASKED
    # A pending method does not protect login.
    assert (await login(stack.client)).json()["status"] == "authenticated"


async def test_wrong_or_foreign_codes_do_not_enable(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    await stack.enroll(token, "email")
    sms_code = stack.last_code("sms", RU_MOBILE)
    email_code = stack.last_code("email", EMAIL)
    wrong = next(f"{n:06d}" for n in range(100000, 999999, 7)
                 if f"{n:06d}" not in (sms_code, email_code))
    problem(await stack.confirm(token, "sms", wrong), 400, "invalid_code")
    if email_code != sms_code:  # the e-mail's code is no use on SMS
        problem(await stack.confirm(token, "sms", email_code), 400, "invalid_code")
    assert (await method_view(stack.client, token, "sms"))["enabled"] is False
    r = await stack.confirm(token, "sms", sms_code)
    assert r.status_code == 200, r.text
    # Used once: the same code cannot confirm again, nor enable e-mail.
    problem(await stack.confirm(token, "sms", sms_code), 409, "conflict")
    if email_code != sms_code:
        problem(await stack.confirm(token, "email", sms_code), 400, "invalid_code")


async def test_an_enabled_method_cannot_be_enrolled_again(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    stack.clock.advance(61)
    problem(await stack.enroll(token, "sms", phone=UK_MOBILE), 409, "method_already_enabled")
    assert stack.sms_to(UK_MOBILE) == []


async def test_a_new_destination_replaces_the_pending_one(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    first = stack.last_code("sms", RU_MOBILE)
    stack.clock.advance(61)
    r = await stack.enroll(token, "sms", phone=UK_MOBILE)
    assert r.status_code == 202 and r.json()["sent_to"] == UK_MOBILE_MASKED
    second = stack.last_code("sms", UK_MOBILE)
    if first != second:
        problem(await stack.confirm(token, "sms", first), 400, "invalid_code")
    r = await stack.confirm(token, "sms", second)
    assert r.status_code == 200 and r.json()["destination"] == UK_MOBILE_MASKED


async def test_the_pending_enrollment_code_can_be_resent(stack: Stack) -> None:
    token = await signed_in(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    stack.clock.advance(61)
    r = await stack.manage_challenge(token, "sms")
    assert r.status_code == 202 and r.json()["sent_to"] == RU_MOBILE_MASKED
    assert len(stack.sms_to(RU_MOBILE)) == 2
    assert "to enable" in stack.sms_to(RU_MOBILE)[-1]
    r = await stack.confirm(token, "sms", stack.last_code("sms", RU_MOBILE))
    assert r.status_code == 200, r.text
