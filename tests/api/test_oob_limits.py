"""Resend cooldown and send caps: per destination, per account, per client IP — all
configurable, answered 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import StartStack
from tests.api.helpers import EMAIL, PIN, login_token, problem, session_for, sign_up
from tests.api.oob_support import RU_MOBILE, Stack

# Valid Russian mobile numbers, all different (for caps that count per destination).
NUMBERS = [f"+7916{n:07d}" for n in range(1234560, 1234560 + 30)]


async def user(stack: Stack, email: str = "jane@example.com") -> str:
    await sign_up(stack.client, email)
    return await session_for(stack.client, email)


def rate_limited(r: httpx.Response, *, at_least: int, at_most: int,
                 code: str = "send_cap_reached") -> int:
    body = problem(r, 429, code)
    assert body["retryable"] is True
    retry = int(r.headers["Retry-After"])
    assert at_least <= retry <= at_most, retry
    assert body.get("retry_after") in (None, retry)
    return retry


def too_soon(r: httpx.Response, *, at_least: int, at_most: int) -> int:
    """The resend cooldown: a code was sent moments ago."""
    return rate_limited(r, at_least=at_least, at_most=at_most, code="resend_too_soon")


async def test_resend_cooldown_is_60_seconds(stack: Stack) -> None:
    token = await user(stack)
    r = await stack.enroll(token, "sms", phone=RU_MOBILE)
    assert r.status_code == 202 and r.json()["resend_in"] == 60
    r = await stack.manage_challenge(token, "sms")  # resend the enrollment code
    too_soon(r, at_least=60, at_most=60)
    stack.clock.advance(20)
    too_soon(await stack.manage_challenge(token, "sms"), at_least=40, at_most=40)
    # Starting the enrollment again is a resend too.
    too_soon(await stack.enroll(token, "sms", phone=NUMBERS[0]), at_least=40, at_most=40)
    stack.clock.advance(39)
    too_soon(await stack.manage_challenge(token, "sms"), at_least=1, at_most=1)
    assert len(stack.sms_to(RU_MOBILE)) == 1 and stack.sms_to(NUMBERS[0]) == []
    stack.clock.advance(1)
    assert (await stack.manage_challenge(token, "sms")).status_code == 202
    assert len(stack.sms_to(RU_MOBILE)) == 2


async def test_cooldown_counts_per_channel_and_purpose_and_applies_to_login(
        stack: Stack) -> None:
    token = await user(stack)
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    # Another channel is not held back by the SMS just sent.
    assert (await stack.enroll(token, "email")).status_code == 202
    # Nor is the first login code right after enabling: the cooldown is per purpose.
    lt = await login_token(stack.client)
    assert (await stack.login_challenge(lt, "sms")).status_code == 202
    too_soon(await stack.login_challenge(lt, "sms"), at_least=60, at_most=60)
    stack.clock.advance(59)
    too_soon(await stack.login_challenge(lt, "sms"), at_least=1, at_most=1)
    stack.clock.advance(1)
    assert (await stack.login_challenge(lt, "sms")).status_code == 202
    too_soon(await stack.login_challenge(lt, "sms"), at_least=60, at_most=60)


async def test_at_most_5_codes_per_destination_an_hour(stack: Stack) -> None:
    token = await user(stack)
    for _ in range(5):
        r = await stack.enroll(token, "sms", phone=RU_MOBILE)
        assert r.status_code == 202, r.text
        stack.clock.advance(61)
    retry = rate_limited(await stack.enroll(token, "sms", phone=RU_MOBILE),
                         at_least=1, at_most=3600)
    # The destination is capped whoever asks, and on any channel that reaches it.
    other = await user(stack, "omar@example.com")
    rate_limited(await stack.enroll(other, "whatsapp", phone=RU_MOBILE),
                 at_least=1, at_most=3600)
    assert len(stack.sms_to(RU_MOBILE)) == 5 and stack.whatsapp_to(RU_MOBILE) == []
    # Another number is fine.
    assert (await stack.enroll(other, "sms", phone=NUMBERS[0])).status_code == 202
    stack.clock.advance(retry)  # the next hour (and a new session: the old one idled out)
    token = await session_for(stack.client)
    assert (await stack.enroll(token, "sms", phone=RU_MOBILE)).status_code == 202


async def test_at_most_10_codes_per_account_an_hour(stack: Stack) -> None:
    token = await user(stack)
    for number in NUMBERS[:10]:
        r = await stack.enroll(token, "sms", phone=number)
        assert r.status_code == 202, r.text
        stack.clock.advance(61)
    rate_limited(await stack.enroll(token, "sms", phone=NUMBERS[10]), at_least=1,
                 at_most=3600)
    rate_limited(await stack.enroll(token, "email"), at_least=1, at_most=3600)
    assert stack.sms_to(NUMBERS[10]) == [] and stack.mail_to(EMAIL) == []
    # Another account from the same address is not held back.
    other = await user(stack, "omar@example.com")
    assert (await stack.enroll(other, "sms", phone=NUMBERS[10])).status_code == 202


async def test_at_most_20_codes_per_client_ip_an_hour(start_stack: StartStack) -> None:
    stack = await start_stack()
    elsewhere = await start_stack(ip="198.51.100.9")
    tokens = [await user(stack, f"user{i}@example.com") for i in range(3)]
    numbers = iter(NUMBERS)
    sent = 0
    for _ in range(7):
        for token in tokens:
            if sent == 20:
                break
            r = await stack.enroll(token, "sms", phone=next(numbers))
            assert r.status_code == 202, r.text
            sent += 1
        stack.clock.advance(61)
    r = await stack.enroll(tokens[2], "sms", phone=next(numbers))
    rate_limited(r, at_least=1, at_most=3600)
    # The same user from another address is served.
    r = await elsewhere.enroll(tokens[2], "sms", phone=next(numbers))
    assert r.status_code == 202, r.text


async def test_caps_are_configurable(start_stack: StartStack) -> None:
    stack = await start_stack(sends_per_destination_per_hour=2, sends_per_account_per_hour=3,
                              resend_cooldown_seconds=10)
    token = await user(stack)
    for _ in range(2):
        assert (await stack.enroll(token, "sms", phone=RU_MOBILE)).status_code == 202
        stack.clock.advance(10)
    rate_limited(await stack.enroll(token, "sms", phone=RU_MOBILE), at_least=1, at_most=3600)
    assert (await stack.enroll(token, "sms", phone=NUMBERS[0])).status_code == 202
    stack.clock.advance(10)
    rate_limited(await stack.enroll(token, "sms", phone=NUMBERS[1]), at_least=1, at_most=3600)

    ip_capped = await start_stack(sends_per_ip_per_hour=1, ip="198.51.100.20")
    other = await user(ip_capped, "omar@example.com")
    r = await ip_capped.enroll(other, "email")
    assert r.status_code == 202, r.text
    rate_limited(await ip_capped.enroll(other, "sms", phone=NUMBERS[2]), at_least=1,
                 at_most=3600)


async def test_a_refused_send_is_not_counted(start_stack: StartStack) -> None:
    """Asking during the cooldown or over a cap does not use up the allowance."""
    stack = await start_stack(sends_per_destination_per_hour=2)
    token = await user(stack)
    assert (await stack.enroll(token, "sms", phone=RU_MOBILE)).status_code == 202
    for _ in range(5):
        problem(await stack.manage_challenge(token, "sms"), 429, "resend_too_soon")
    stack.clock.advance(61)
    assert (await stack.manage_challenge(token, "sms")).status_code == 202
    assert len(stack.sms_to(RU_MOBILE)) == 2


async def test_the_wrong_pin_does_not_spend_the_allowance(start_stack: StartStack) -> None:
    stack = await start_stack(sends_per_account_per_hour=1)
    token = await user(stack)
    for _ in range(3):
        problem(await stack.enroll(token, "sms", pin="000000", phone=RU_MOBILE), 400,
                "pin_invalid")
    assert (await stack.enroll(token, "sms", pin=PIN, phone=RU_MOBILE)).status_code == 202


@pytest.mark.parametrize("round_", range(4))
async def test_racing_requests_do_not_exceed_a_cap(start_stack: StartStack, round_: int
                                                   ) -> None:
    stack = await start_stack(sends_per_destination_per_hour=1)
    tokens = [await user(stack, f"user{i}@example.com") for i in range(4)]
    answers = await asyncio.gather(*[stack.enroll(t, "sms", phone=RU_MOBILE) for t in tokens])
    assert sorted(r.status_code for r in answers) == [202, 429, 429, 429], [
        r.text for r in answers]
    assert len(stack.sms_to(RU_MOBILE)) == 1
