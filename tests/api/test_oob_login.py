"""Logging in, switching and disabling with SMS, e-mail and WhatsApp codes, exactly as
with TOTP: a code is bound to its purpose and channel, valid 5 minutes, used once, and
dead after 5 wrong tries."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.helpers import (
    EMAIL,
    auth,
    login,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    verify,
)
from tests.api.oob_support import (
    EMAIL_MASKED,
    RU_MOBILE,
    RU_MOBILE_MASKED,
    UK_MOBILE,
    UK_MOBILE_MASKED,
    Stack,
)

CHANNELS = [("sms", RU_MOBILE, {"phone": RU_MOBILE}, RU_MOBILE_MASKED),
            ("email", EMAIL, {}, EMAIL_MASKED),
            ("whatsapp", UK_MOBILE, {"phone": UK_MOBILE}, UK_MOBILE_MASKED)]


def other_code(*taken: str) -> str:
    return next(f"{n:06d}" for n in range(123457, 999999, 7919) if f"{n:06d}" not in taken)


async def with_method(stack: Stack, channel: str, to: str, params: dict[str, str]) -> str:
    """A user whose only method is ``channel`` (so it protects login); the session."""
    await sign_up(stack.client)
    token = await session_for(stack.client)
    await stack.enable(token, channel, to, **params)
    stack.clock.advance(61)  # past the resend cooldown of the enrollment code
    return token


@pytest.mark.parametrize(("channel", "to", "params", "masked"), CHANNELS)
async def test_login_with_a_code_from_the_channel(stack: Stack, channel: str, to: str,
                                                  params: dict[str, str], masked: str
                                                  ) -> None:
    await with_method(stack, channel, to, params)
    r = await login(stack.client)
    assert r.json()["status"] == "second_factor_required"
    assert r.json()["methods"] == [{"type": channel, "destination": masked}]
    lt = r.json()["login_token"]
    # The code is sent only when asked for.
    sent_before = stack.sent_count()
    r = await stack.login_challenge(lt, channel)
    assert r.status_code == 202, r.text
    assert r.json() == {"method": channel, "sent_to": masked, "expires_in": 300,
                        "resend_in": 60}
    assert stack.sent_count() == sent_before + 1
    code = stack.last_code(channel, to)
    problem(await verify(stack.client, lt, channel, other_code(code)), 400, "invalid_code")
    r = await verify(stack.client, lt, channel, code)
    assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
    # Used once: sent again, it is refused as already used (not as a wrong code).
    lt2 = await login_token(stack.client)
    problem(await verify(stack.client, lt2, channel, code), 409, "code_already_used")
    # No answer shows the whole destination.
    r = await stack.client.get("/api/v1/me/methods", headers=auth(r.json()["session_token"]))
    assert to not in r.text and to.lstrip("+") not in r.text
    assert next(m for m in r.json()["methods"] if m["type"] == channel)["destination"] == masked


async def test_codes_are_bound_to_their_purpose(stack: Stack) -> None:
    token = await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    # A login code does not disable the method nor switch it.
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    login_code = stack.last_code("sms", RU_MOBILE)
    problem(await stack.disable(token, "sms", login_code), 400, "invalid_code")
    problem(await stack.switch(token, "sms", login_code, withdrawal=True), 400, "invalid_code")
    assert (await method_view(stack.client, token, "sms"))["enabled"] is True
    # A code for managing the method does not log in.
    stack.clock.advance(61)
    assert (await stack.manage_challenge(token, "sms")).status_code == 202
    manage_code = stack.last_code("sms", RU_MOBILE)
    assert "to change or disable" in stack.sms_to(RU_MOBILE)[-1]
    if manage_code != login_code:
        problem(await verify(stack.client, lt, "sms", manage_code), 400, "invalid_code")
    # Each one still serves its own purpose.
    r = await verify(stack.client, lt, "sms", login_code)
    assert r.status_code == 200, r.text
    r = await stack.disable(token, "sms", manage_code)
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text


async def test_a_code_from_one_channel_is_refused_on_another(stack: Stack) -> None:
    token = await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    await stack.enable(token, "email", EMAIL)
    stack.clock.advance(61)
    await stack.manage_challenge(token, "sms")
    sms_code = stack.last_code("sms", RU_MOBILE)
    # E-mail has no live manage code at all; the SMS code does not count for it.
    problem(await stack.switch(token, "email", sms_code, login=True), 400, "invalid_code")
    problem(await stack.disable(token, "email", sms_code), 400, "invalid_code")
    await stack.manage_challenge(token, "email")
    email_code = stack.last_code("email", EMAIL)
    if email_code != sms_code:
        problem(await stack.disable(token, "email", sms_code), 400, "invalid_code")
    # At login, e-mail is not offered (it does not protect login) and cannot be used.
    lt = await login_token(stack.client)
    r = await stack.login_challenge(lt, "email")
    problem(r, 409, "method_not_enabled")
    problem(await verify(stack.client, lt, "email", email_code), 409, "method_not_enabled")
    # The SMS code sent for the login does not switch e-mail either.
    await stack.login_challenge(lt, "sms")
    login_code = stack.last_code("sms", RU_MOBILE)
    problem(await stack.switch(token, "email", login_code, login=True), 400, "invalid_code")
    r = await stack.switch(token, "email", email_code, login=True)
    assert r.status_code == 200 and r.json()["protects"]["login"] is True


async def test_a_code_is_dead_after_five_wrong_tries_even_if_the_sixth_is_right(
        stack: Stack) -> None:
    await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    code = stack.last_code("sms", RU_MOBILE)
    wrong = other_code(code)
    for _ in range(4):
        problem(await verify(stack.client, lt, "sms", wrong), 400, "invalid_code")
    # The fifth wrong try also locks the method for a minute (consecutive failures).
    problem(await verify(stack.client, lt, "sms", wrong), 423, "method_locked")
    stack.clock.advance(61)  # the lock is over, the code (5 minutes) would still be valid
    problem(await verify(stack.client, lt, "sms", code), 400, "code_expired")
    # A new code works.
    await stack.login_challenge(lt, "sms")
    r = await verify(stack.client, lt, "sms", stack.last_code("sms", RU_MOBILE))
    assert r.status_code == 200, r.text


async def test_the_wrong_try_count_belongs_to_the_code(stack: Stack) -> None:
    """Four wrong tries, then the right one: it passes (the limit is five)."""
    await with_method(stack, "email", EMAIL, {})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "email")
    code = stack.last_code("email", EMAIL)
    for _ in range(4):
        problem(await verify(stack.client, lt, "email", other_code(code)), 400,
                "invalid_code")
    r = await verify(stack.client, lt, "email", code)
    assert r.status_code == 200, r.text


async def test_a_code_expires_after_five_minutes(stack: Stack) -> None:
    token = await with_method(stack, "whatsapp", UK_MOBILE, {"phone": UK_MOBILE})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "whatsapp")
    stack.clock.advance(299)
    r = await verify(stack.client, lt, "whatsapp", stack.last_code("whatsapp", UK_MOBILE))
    assert r.status_code == 200, r.text

    token = r.json()["session_token"]
    await stack.manage_challenge(token, "whatsapp")
    stack.clock.advance(301)
    code = stack.last_code("whatsapp", UK_MOBILE)
    problem(await stack.disable(token, "whatsapp", code), 400, "code_expired")
    assert (await method_view(stack.client, token, "whatsapp"))["enabled"] is True


async def test_an_expired_code_does_not_log_in(stack: Stack) -> None:
    await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    code = stack.last_code("sms", RU_MOBILE)
    stack.clock.advance(240)
    lt = await login_token(stack.client)  # the first login token lived 5 minutes too
    stack.clock.advance(61)
    problem(await verify(stack.client, lt, "sms", code), 400, "code_expired")


async def test_a_new_code_replaces_the_previous_one(stack: Stack) -> None:
    await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    first = stack.last_code("sms", RU_MOBILE)
    stack.clock.advance(61)
    await stack.login_challenge(lt, "sms")
    second = stack.last_code("sms", RU_MOBILE)
    if first != second:
        problem(await verify(stack.client, lt, "sms", first), 400, "invalid_code")
    assert (await verify(stack.client, lt, "sms", second)).status_code == 200


async def test_switch_and_disable_need_a_code(stack: Stack) -> None:
    token = await with_method(stack, "email", EMAIL, {})
    problem(await stack.switch(token, "email", "", login=False), 400, "invalid_code")
    problem(await stack.disable(token, "email", "123456"), 400, "invalid_code")
    await stack.manage_challenge(token, "email")
    code = stack.last_code("email", EMAIL)
    r = await stack.switch(token, "email", code, login=False)
    assert r.status_code == 200 and r.json()["protects"]["login"] is False
    # Used: the same code does not also disable.
    problem(await stack.disable(token, "email", code), 409, "code_already_used")
    assert (await login(stack.client)).json()["status"] == "authenticated"


async def test_challenge_for_a_method_not_enrolled(stack: Stack) -> None:
    await sign_up(stack.client)
    token = await session_for(stack.client)
    problem(await stack.manage_challenge(token, "sms"), 409, "method_not_enabled")
    assert stack.sent_count() == 0


async def test_the_login_token_is_needed_for_a_login_code(stack: Stack) -> None:
    await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    sent = stack.sent_count()
    problem(await stack.login_challenge("not-a-token", "sms"), 401, "not_authenticated")
    assert stack.sent_count() == sent


async def test_a_code_is_stored_hashed_and_may_be_typed_with_spaces(stack: Stack) -> None:
    await with_method(stack, "sms", RU_MOBILE, {"phone": RU_MOBILE})
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    code = stack.last_code("sms", RU_MOBILE)
    assert len(code) == 6 and code.isdigit()
    for row in await stack.codes():
        assert code not in row.code_hash and len(row.code_hash) >= 32
    r = await verify(stack.client, lt, "sms", f" {code[:3]} {code[3:]} ")
    assert r.status_code == 200, r.text


async def test_racing_requests_spend_a_code_once(stack: Stack) -> None:
    token = await with_method(stack, "email", EMAIL, {})
    await stack.manage_challenge(token, "email")
    code = stack.last_code("email", EMAIL)
    answers = await asyncio.gather(*[
        stack.switch(token, "email", code, withdrawal=bool(i % 2)) for i in range(6)])
    statuses = sorted(r.status_code for r in answers)
    # The five losers sent the right code: told it was used, and none of them counts.
    assert statuses == [200] + [409] * 5, [r.text for r in answers]
