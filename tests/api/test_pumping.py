"""SMS pumping defaults: sign-ups throttled per client network, destinations that are
paid per message or most abused refused by default, and an operator-wide hourly budget
for SMS and WhatsApp with a metric and a warning near it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.hashing import Hasher
from stepup.services import notifications
from stepup.services.runtime import Runtime
from stepup.store.models import NotificationQueue, User
from tests.api.conftest import StartStack
from tests.api.helpers import PASSWORD, PIN, problem, session_for, sign_up
from tests.api.oob_support import Stack
from tests.api.test_app_budget import PORTAL_IP, Portal, app_key, counter
from tests.pages import helpers as pages
from tests.support import instances
from tests.support.providers import Scripted

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
SIERRA_LEONE = "+23225123456"
SOMALIA = "+25271123456"
IRIDIUM = "+881612345678"
# A real premium-rate range: phonenumbers' own example for the United Kingdom (09…).
_premium = phonenumbers.example_number_for_type("GB", PhoneNumberType.PREMIUM_RATE)
assert _premium is not None
PREMIUM = phonenumbers.format_number(_premium, phonenumbers.PhoneNumberFormat.E164)
OPS = "ops@example.com"
BUDGET_KEY = "send-budget:sms+whatsapp"


async def post_signup(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/accounts", json={"email": email, "password": PASSWORD,
                                                       "pin": PIN})


async def users(rt: Runtime) -> int:
    async with rt.db() as db:
        return int((await db.execute(select(func.count()).select_from(User))).scalar_one())


# --- sign-ups per client network ---------------------------------------------------------


async def test_the_21st_sign_up_from_one_network_waits_for_the_next_hour(
        start_stack: StartStack, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    here = await start_stack(ip="203.0.113.7", **CHEAP_HASHING)
    same_network = await start_stack(ip="203.0.113.200", **CHEAP_HASHING)
    elsewhere = await start_stack(ip="198.51.100.9", **CHEAP_HASHING)
    for n in range(20):
        assert (await post_signup(here.client, f"u{n}@example.com")).status_code == 201
    hashed: list[str] = []
    real_hash = Hasher.hash_password
    monkeypatch.setattr(Hasher, "hash_password",
                        lambda self, pw: hashed.append(pw) or real_hash(self, pw))
    r = await post_signup(here.client, "u20@example.com")
    body = problem(r, 429, "signup_limit_reached")
    assert body["retryable"] is True and "network" in body["detail"]
    assert r.headers["Retry-After"] == "3601"  # the clock stands at 12:00:00
    # The whole /24 is one network; a refusal hashed nothing and counted nothing.
    problem(await post_signup(same_network.client, "u21@example.com"), 429,
            "signup_limit_reached")
    assert hashed == [] and await users(here.rt) == 20
    assert await counter(here, "signup-net:203.0.113.0/24") == 20
    # Another address signs up meanwhile.
    assert (await post_signup(elsewhere.client, "other@example.com")).status_code == 201
    # A fixed hourly window: at 12:59:59 still refused, at 13:00 a new count.
    clock.advance(3599)
    r = await post_signup(here.client, "u20@example.com")
    assert problem(r, 429, "signup_limit_reached") and r.headers["Retry-After"] == "2"
    clock.advance(1)
    assert (await post_signup(here.client, "u20@example.com")).status_code == 201


async def test_ipv6_sign_ups_count_per_64(start_stack: StartStack) -> None:
    first = await start_stack(ip="2001:db8:1:2::10", signups_per_ip_per_hour=1,
                              **CHEAP_HASHING)
    neighbour = await start_stack(ip="2001:db8:1:2:ffff::1", signups_per_ip_per_hour=1,
                                  **CHEAP_HASHING)
    other = await start_stack(ip="2001:db8:1:3::10", signups_per_ip_per_hour=1,
                              **CHEAP_HASHING)
    assert (await post_signup(first.client, "a@example.com")).status_code == 201
    problem(await post_signup(neighbour.client, "b@example.com"), 429, "signup_limit_reached")
    assert (await post_signup(other.client, "c@example.com")).status_code == 201


async def test_racing_sign_ups_cannot_pass_the_limit(start_stack: StartStack) -> None:
    stack = await start_stack(signups_per_ip_per_hour=5, **CHEAP_HASHING)
    answers = await asyncio.gather(*(post_signup(stack.client, f"r{n}@example.com")
                                     for n in range(8)))
    assert sorted(r.status_code for r in answers) == [201] * 5 + [429] * 3
    assert await users(stack.rt) == 5


@contextlib.asynccontextmanager
async def portal(settings: Settings, clock: FrozenClock, **overrides: Any
                 ) -> AsyncIterator[httpx.AsyncClient]:
    rt = Runtime.build(settings.model_copy(update={**CHEAP_HASHING, **overrides}), clock)
    try:
        async with instances.http_client(rt) as client:
            yield client
    finally:
        await rt.engine.dispose()


async def test_the_signup_page_says_why_it_refuses(settings: Settings, runtime: Runtime,
                                                   clock: FrozenClock) -> None:
    async with portal(settings, clock, signups_per_ip_per_hour=1) as client:
        await sign_up(client, "first@example.com")  # the API and the page count together
        html = await pages.get(client, "/signup")
        r = await pages.submit(client, html, "/signup", email="second@example.com",
                               password=PASSWORD, pin=PIN, language="en")
        page = pages.check(r, 429)
        assert "Too many accounts were created from your network" in page
        assert await users(runtime) == 1


# --- refused destinations ------------------------------------------------------------------


@pytest.mark.parametrize(("phone", "why"), [
    (IRIDIUM, "satellite or international network"),
    ("+870301234567", "satellite or international network"),  # Inmarsat
    (SIERRA_LEONE, "this country because of SMS fraud"),
    (SOMALIA, "this country because of SMS fraud"),
    (PREMIUM, "premium-rate"),
])
async def test_pumped_destinations_are_refused_with_a_reason(stack: Stack, phone: str,
                                                             why: str) -> None:
    await sign_up(stack.client)
    token = await session_for(stack.client)
    for channel in ("sms", "whatsapp"):
        body = problem(await stack.enroll(token, channel, phone=phone), 422,
                       "validation_error")
        assert body["field"] == "phone" and why in body["detail"], body
    assert stack.api.received == []


async def test_phone_allow_lifts_the_default_refusal(start_stack: StartStack) -> None:
    stack = await start_stack(phone_allow=["SL", "881", "GB"])
    await sign_up(stack.client)
    token = await session_for(stack.client)
    assert (await stack.enroll(token, "sms", phone=SIERRA_LEONE)).status_code == 202
    assert len(stack.sms_to(SIERRA_LEONE)) == 1
    stack.clock.advance(60)
    assert (await stack.enroll(token, "whatsapp", phone=IRIDIUM)).status_code == 202
    # Somalia is not named; a premium-rate number is paid per message whatever is allowed.
    body = problem(await stack.enroll(token, "sms", phone=SOMALIA), 422, "validation_error")
    assert "SMS fraud" in body["detail"]
    body = problem(await stack.enroll(token, "sms", phone=PREMIUM), 422, "validation_error")
    assert "premium-rate" in body["detail"]


@pytest.mark.parametrize(("language", "message"), [
    ("en", "Codes are not sent to phone numbers of this country because of SMS fraud"),
    ("ru", "Коды не отправляются на номера телефонов этой страны из-за СМС-мошенничества"),
])
async def test_the_portal_shows_why_a_number_is_refused(client: httpx.AsyncClient,
                                                        language: str, message: str) -> None:
    await pages.sign_up(client, language=language)
    html = await pages.get(client, "/settings/methods/sms/enable")
    r = await pages.submit(client, html, "/settings/methods/sms/enable", phone=SOMALIA,
                           pin=PIN)
    page = pages.check(r, 422)
    error = re.search(r'<p class="field-error" id="phone-error">([^<]+)</p>', page)
    assert error and message in error.group(1), page


# --- the operator's SMS/WhatsApp budget -----------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def queued_operator_notices(rt: Runtime) -> list[NotificationQueue]:
    async with rt.db() as db:
        q = select(NotificationQueue).where(NotificationQueue.kind == "operator.sms_budget")
        return list((await db.execute(q)).scalars().all())


def budget_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "STEPUP_SMS_BUDGET_PER_HOUR" in r.getMessage()]


async def test_the_budget_counts_every_app_refunds_failures_and_warns_once(
        start_stack: StartStack, runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    stack = await start_stack(ip=PORTAL_IP, sms_budget_per_hour=5, operator_email=OPS)
    key_a, shop = await app_key(runtime, "shop")
    a = Portal(stack, key_a)
    b = Portal(stack, (await app_key(runtime, "bank"))[0], first_number=10)
    charged = sample("stepup_sms_budget_messages_total", outcome="charged")
    a1, b1, b2 = await a.new_user(), await b.new_user(), await b.new_user()
    assert (await a.enrol(a1)).status_code == 202
    assert (await a.challenge(a1)).status_code == 202
    assert (await b.enrol(b1)).status_code == 202
    assert budget_warnings(caplog) == []
    assert sample("stepup_sms_budget_used_ratio") == pytest.approx(0.6)
    assert (await b.challenge(b1)).status_code == 202  # 4 of 5: 80 %
    assert len(budget_warnings(caplog)) == 1 and "4 of the 5" in budget_warnings(caplog)[0]
    assert sample("stepup_sms_budget_used_ratio") == pytest.approx(0.8)
    # A failed delivery gives its message back to the budget.
    stack.api.script.append(Scripted(503, {"message": "down"}))
    problem(await b.enrol(b2), 502, "delivery_failed")
    assert await counter(stack, BUDGET_KEY) == 4
    assert (await b.enrol(b2)).status_code == 202  # the 5th
    # The 6th code of the hour, whichever app asks: refused, and nothing is sent.
    a2 = await a.new_user()
    r = await a.enrol(a2)
    assert problem(r, 429, "send_cap_reached")["retryable"] is True
    assert r.headers["Retry-After"] == "3601"
    assert len([m for m in stack.api.received if m.path.endswith("/Messages.json")]) == 6
    assert await counter(stack, BUDGET_KEY) == 5
    assert await counter(stack, f"send-app:{shop}") == 2  # the refusal was rolled back
    assert sample("stepup_sms_budget_messages_total", outcome="charged") - charged == 6
    # Warned once in the hour, with one e-mail to the operator.
    assert len(budget_warnings(caplog)) == 1
    [notice] = await queued_operator_notices(stack.rt)
    assert stack.rt.destinations.read(notice) == OPS and notice.user_id is None
    await notifications.deliver_due(stack.rt)
    [mail] = stack.mail_to(OPS)
    assert "80 % of the hourly budget of billed codes" in str(mail["Subject"])
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None and "4 of the 5 codes" in plain.get_content()
    # The next hour, a new budget; the warning may come again then.
    stack.clock.advance(3600)
    assert (await a.enrol(a2)).status_code == 202


async def test_whatsapp_counts_and_email_does_not(start_stack: StartStack,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    stack = await start_stack(sms_budget_per_hour=1)
    await sign_up(stack.client)
    token = await session_for(stack.client)
    assert (await stack.enroll(token, "sms", phone="+447400123456")).status_code == 202
    problem(await stack.enroll(token, "whatsapp", phone="+447400123456"), 429,
            "send_cap_reached")
    assert (await stack.enroll(token, "email")).status_code == 202
    # No operator address: the warning is logged, and nothing is queued.
    assert len(budget_warnings(caplog)) == 1
    assert await queued_operator_notices(stack.rt) == []


async def test_no_budget_when_zero(start_stack: StartStack) -> None:
    stack = await start_stack(sms_budget_per_hour=0)
    await sign_up(stack.client)
    token = await session_for(stack.client)
    assert (await stack.enroll(token, "sms", phone="+447400123456")).status_code == 202
    assert await counter(stack, BUDGET_KEY) == 0
