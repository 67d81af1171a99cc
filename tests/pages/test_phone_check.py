"""The number check of a set-up's step 1 (POST /settings/methods/{type}/check-number),
which portal.js asks before it sends the form, so that a refused number is told while
the PIN is still in its field: it answers whether step 1 would accept the number and,
if not, the very reason step 1 would show — for the signed-in user, with the CSRF token
of the page, and counted per account."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import httpx
import pytest

from stepup.services.methods import DESTINATION_CHECKS_PER_HOUR
from stepup.services.runtime import Runtime
from tests.pages.helpers import PIN, check, form, get, sign_up, submit

ENABLE = "/settings/methods/sms/enable"
CHECK = "/settings/methods/sms/check-number"


async def _token(client: httpx.AsyncClient, url: str = ENABLE) -> str:
    return form(await get(client, url), url).fields["csrf_token"]


async def _ask(client: httpx.AsyncClient, phone: str, token: str, url: str = CHECK
               ) -> httpx.Response:
    return await client.post(url, data={"csrf_token": token, "phone": phone})


def _step_1_says(page: str) -> str:
    """The reason step 1 shows under the phone field, as the page reads."""
    m = re.search(r'<p class="field-error" id="phone-error">([^<]+)</p>', page)
    assert m, page
    return htmllib.unescape(m.group(1))


async def test_an_accepted_number(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    r = await _ask(client, "+44 7400 123456", await _token(client))
    assert r.status_code == 200 and r.json() == {"accepted": True}
    assert r.headers["cache-control"] == "no-store"
    # Nothing was sent and nothing started: the set-up still begins at step 1.
    page = await get(client, ENABLE)
    assert "Step 1 of 2" in page


# (settings changed, typed, reason); every reason normalise_phone gives.
REASONS: list[tuple[dict[str, Any], str, str]] = [
    ({}, "abc", "phone_not_number"),
    ({}, "8 916 123-45-67", "phone_format"),
    ({}, "+999 1234567", "phone_country_code"),
    ({}, "+44 7700", "phone_short"),
    ({}, "+44 7400 1234567890", "phone_long"),
    ({}, "+44 7700 900123", "phone"),
    ({}, "+44 901 234 5678", "phone_premium"),
    ({}, "+881 6 123 45678", "phone_satellite"),
    ({}, "+232 25 123456", "phone_fraud"),
    ({}, "+44 20 7946 0018", "phone_mobile"),
    ({"phone_countries": ["GB"]}, "+7 912 345-67-89", "phone_country"),
]


@pytest.mark.parametrize(("language", "changed", "typed", "reason"),
                         [("en", *r) for r in REASONS]
                         + [("ru", {}, "+7 916", "phone_short"),
                            ("ru", {}, "+7 495 123-45-67", "phone_mobile")])
async def test_a_refusal_gives_the_reason_step_1_would_show(
        client: httpx.AsyncClient, runtime: Runtime, language: str,
        changed: dict[str, Any], typed: str, reason: str) -> None:
    for name, value in changed.items():
        setattr(runtime.settings, name, value)
    await sign_up(client, language=language)
    r = await _ask(client, typed, await _token(client))
    assert r.status_code == 200 and r.headers["content-language"] == language
    answer = r.json()
    assert answer["accepted"] is False and answer["field"] == "phone"
    assert answer["reason"] == reason
    # Word for word what the form says when it is sent without the check.
    page = check(await submit(client, await get(client, ENABLE), ENABLE, phone=typed,
                              pin=PIN), 422)
    assert answer["message"] == _step_1_says(page)


async def test_the_csrf_token_of_the_session_is_required(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for data in ({"phone": "+44 7400 123456"},
                 {"phone": "+44 7400 123456", "csrf_token": "forged"}):
        r = await client.post(CHECK, data=data)
        # The portal's 403 page, as for any form: the script then sends the form itself.
        assert r.status_code == 403 and "accepted" not in r.text


async def test_only_for_a_signed_in_user(client: httpx.AsyncClient) -> None:
    # A visitor's page token (the sign-up form's) is no session's.
    token = form(await get(client, "/signup"), "/signup").fields["csrf_token"]
    r = await _ask(client, "+44 7400 123456", token)
    # To the login page, as for any signed-in form: nothing is checked.
    assert r.status_code == 303 and "/login" in r.headers["location"]
    # Nor after logging out, with the token of the page the user had.
    await sign_up(client)
    token = await _token(client)
    page = await get(client, "/settings/methods")
    await submit(client, page, "/logout")
    r = await _ask(client, "+44 7400 123456", token)
    assert r.status_code == 303 and "/login" in r.headers["location"]


async def test_only_for_a_method_that_sends_to_a_phone(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await _token(client)
    assert (await _ask(client, "+44 7400 123456", token)).json() == {"accepted": True}
    for method_type in ("email", "totp", "nonsense"):
        r = await _ask(client, "+44 7400 123456", token,
                       f"/settings/methods/{method_type}/check-number")
        assert r.status_code == 404 and "accepted" not in r.json()


async def test_checks_are_counted_per_account(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await _token(client)
    for i in range(DESTINATION_CHECKS_PER_HOUR):
        r = await _ask(client, "+44 7700" if i % 2 else "+44 7400 123456", token)
        assert r.status_code == 200, (i, r.text)
    r = await _ask(client, "+44 7400 123456", token)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) > 0 and "accepted" not in r.json()
    # Another account has its own count.
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        await sign_up(other, "ann@example.com")
        r = await _ask(other, "+44 7400 123456", await _token(other))
        assert r.status_code == 200 and r.json() == {"accepted": True}
