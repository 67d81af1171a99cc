"""The phone field of a set-up (seed 001, step 1): its example is a mobile number of the
page's country that the service accepts, a refusal says why, and nothing typed but the
PIN is lost — the PIN, a secret, is never written back into a page, and the page asks
for it again in words."""

from __future__ import annotations

import html as htmllib
import re

import httpx
import pytest

from stepup.services.runtime import Runtime
from tests.pages.helpers import PIN, check, get, sign_up, submit

ENABLE = "/settings/methods/sms/enable"


def placeholder(page: str) -> str:
    m = re.search(r'<input id="phone"[^>]*placeholder="([^"]+)"', page)
    assert m, "the phone field has no example"
    return htmllib.unescape(m.group(1))


@pytest.mark.parametrize(("language", "example", "hint"), [
    ("en", "+44 7400 123456", "International format, e.g. +44 7400 123456"),
    ("ru", "+7 912 345-67-89", "В международном формате, например +7 912 345-67-89"),
])
async def test_the_example_is_a_mobile_of_the_pages_country_and_is_accepted(
        client: httpx.AsyncClient, language: str, example: str, hint: str) -> None:
    await sign_up(client, language=language)
    page = await get(client, ENABLE)
    assert placeholder(page) == example and hint in page
    assert "7700 900123" not in page  # the old example, a number that does not exist
    # The page's own example, typed in as it is shown, passes every check.
    html = check(await submit(client, page, ENABLE, phone=placeholder(page), pin=PIN))
    assert "Step 2 of 2" in html or "Шаг 2 из 2" in html


async def test_the_operators_country_gives_the_example(runtime: Runtime,
                                                       client: httpx.AsyncClient) -> None:
    settings = runtime.settings
    settings.default_phone_region = "DE"
    await sign_up(client, language="ru")
    assert placeholder(await get(client, ENABLE)) == "+49 1512 3456789"
    # Allowed countries win: the example is never a number the service refuses.
    settings.phone_countries = ["FR"]
    assert placeholder(await get(client, ENABLE)).startswith("+33 6")


@pytest.mark.parametrize(("language", "phone", "says", "again"), [
    ("en", "+44 7700", "too short", "enter your PIN again"),
    ("en", "+999 1234567", "country code is unknown", "enter your PIN again"),
    ("en", "+44 20 7946 0018", "mobile phone number", "enter your PIN again"),
    ("ru", "+7 916", "слишком короткий", "введите ПИН-код ещё раз"),
    ("ru", "+7 495 123-45-67", "мобильного телефона", "введите ПИН-код ещё раз"),
])
async def test_a_refused_number_says_why_and_keeps_what_was_typed(
        client: httpx.AsyncClient, language: str, phone: str, says: str, again: str
        ) -> None:
    await sign_up(client, language=language)
    page = await get(client, ENABLE)
    assert again not in page
    page = check(await submit(client, page, ENABLE, phone=phone, pin=PIN), 422)
    error = re.search(r'<p class="field-error" id="phone-error">([^<]+)</p>', page)
    assert error and says in htmllib.unescape(error.group(1)), page
    assert f'value="{htmllib.escape(phone)}"' in page  # the number stays in its field
    # The PIN is not written back (a secret never is); the page says to type it again.
    pin = re.search(r'<input id="pin"[^>]*>', page)
    assert pin and "value=" not in pin.group(0) and 'aria-describedby="pin-hint"' in pin.group(0)
    assert again in page


async def test_a_wrong_pin_keeps_the_number_and_marks_only_the_pin(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    page = await get(client, ENABLE)
    page = check(await submit(client, page, ENABLE, phone="+44 7400 123456", pin="999999"),
                 400)
    assert 'value="+44 7400 123456"' in page and 'id="pin-error"' in page
    assert "enter your PIN again" not in page  # the PIN's own error says it
