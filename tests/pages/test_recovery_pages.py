"""The user's side of lock-out recovery (seed 004): a backup code and the prompt to set
up methods again, the recovery request form, and the cancel link."""

from __future__ import annotations

import html as htmllib
import re

import httpx
import pytest
from sqlalchemy import update

from stepup.domain.clock import FrozenClock
from stepup.services import recovery
from stepup.services.runtime import Runtime
from stepup.store.models import RecoveryRequest
from tests.pages.helpers import (
    check,
    enable_backup_codes,
    enable_totp,
    form,
    get,
    log_in,
    log_out,
    redirected_to,
    sign_up,
    spaced,
    submit,
)


async def _at_second_factor(client: httpx.AsyncClient, clock: FrozenClock,
                            language: str = "en") -> list[str]:
    await sign_up(client, language=language)
    await enable_totp(client, clock)
    codes = await enable_backup_codes(client)
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    return codes


async def test_second_factor_offers_backup_code_and_recovery(client: httpx.AsyncClient,
                                                             clock: FrozenClock) -> None:
    codes = await _at_second_factor(client, clock)
    html = await get(client, "/login/second-factor")
    assert 'href="/login/second-factor?method=backup_codes">Use a backup code<' in html
    assert 'href="/login/recovery"' in html
    html = await get(client, "/login/second-factor?method=backup_codes")
    r = await submit(client, html, "/login/second-factor", code=codes[0])
    location = redirected_to(r, "/settings/methods?reconfigure=1")
    html = await get(client, location)
    assert 'id="reconfigure"' in html and "You logged in with a backup code." in html


async def test_recovery_request_form_and_status(client: httpx.AsyncClient,
                                                clock: FrozenClock, runtime: Runtime) -> None:
    redirected_to(await client.get("/login/recovery"), "/login")
    await _at_second_factor(client, clock)
    html = await get(client, "/login/recovery")
    assert "Use a backup code" in html and "never ask you for your password" in html
    r = await submit(client, html, "/login/recovery", description="help", channel="email")
    assert "at least 10 characters" in check(r, 422)
    r = await submit(client, html, "/login/recovery", description="Lost my phone entirely.",
                     channel="phone", phone="")
    assert "phone number support should call" in check(r, 422)
    r = await client.post("/login/recovery", data={"description": "Lost my phone entirely.",
                                                   "channel": "email"})
    assert r.status_code == 403  # no CSRF token
    r = await submit(client, html, "/login/recovery", description="Lost my phone entirely.",
                     channel="phone", phone="+44 7400 123456", best_time="mornings")
    redirected_to(r, "/login/recovery?filed=1")
    html = await get(client, "/login/recovery?filed=1")
    assert "Your request was sent." in html and "Support has your request" in html
    # Filing again shows the open request instead of a second one.
    cancel = html.split('href="/recovery/cancel/')[1].split('"')[0]
    html = await get(client, "/login/recovery")
    assert "Support has your request" in html and 'action="/login/recovery"' not in html

    # The cancel link: GET shows a button and changes nothing; the POST cancels.
    html = await get(client, f"/recovery/cancel/{cancel}")
    assert "j***@example.com" in html
    request_id = cancel.split(".")[0]
    assert (await recovery.get(runtime, request_id)).status == "requested"
    r = await submit(client, html, f"/recovery/cancel/{cancel}")
    assert "Recovery request cancelled" in check(r)
    html = await get(client, f"/recovery/cancel/{cancel}")
    assert "no longer open" in html and f'action="/recovery/cancel/{cancel}"' not in html
    html = await get(client, f"/recovery/cancel/{request_id}.{'0' * 64}", status=404)
    assert "This link is not valid" in html
    # A new request is possible a day after the old one was cancelled (the login attempt
    # has long expired by then: log in again).
    html = await get(client, "/login/recovery")
    assert "You can send a new one in 24 hours." in html
    assert 'action="/login/recovery"' not in html
    clock.advance(hours=24)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/recovery")
    assert form(html, "/login/recovery")


async def test_recovery_pages_in_russian(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await _at_second_factor(client, clock, language="ru")
    html = await get(client, "/login/second-factor?lang=ru")
    assert "Не можете воспользоваться ни одним способом?" in html
    html = await get(client, "/login/recovery")
    assert "Что случилось?" in html


def _phone_input(html: str) -> str:
    m = re.search(r'<input id="phone"[^>]*>', html)
    assert m, "no phone field"
    return m.group(0)


@pytest.mark.parametrize(("language", "example", "refusals"), [
    ("en", "+44 7400 123456", [("+44 7700", "The number is too short"),
                               ("+999 1234567", "The country code is unknown"),
                               ("call my office", "This is not a phone number"),
                               ("+44 7700 900123", "This is not a valid phone number")]),
    ("ru", "+7 912 345-67-89", [("+7 916", "Номер слишком короткий"),
                                ("+999 1234567", "Такого кода страны нет")]),
])
async def test_the_phone_field_shows_an_example_and_says_why_a_number_is_refused(
        client: httpx.AsyncClient, clock: FrozenClock, language: str, example: str,
        refusals: list[tuple[str, str]]) -> None:
    await _at_second_factor(client, clock, language)
    html = await get(client, f"/login/second-factor?lang={language}")
    html = await get(client, "/login/recovery")
    field = _phone_input(html)
    assert f'placeholder="{example}"' in field and 'aria-describedby="phone-hint"' in field
    assert htmllib.escape(example) in html.split('id="phone-hint">')[1].split("</p>")[0]
    typed = {"description": "Lost my phone entirely.", "channel": "phone",
             "best_time": "mornings, after 9"}
    for phone, says in refusals:
        page = check(await submit(client, html, "/login/recovery", phone=phone, **typed), 422)
        error = re.search(r'<p class="field-error" id="phone-error">([^<]+)</p>', page)
        assert error and htmllib.unescape(error.group(1)).startswith(says), page
        field = _phone_input(page)
        assert 'aria-invalid="true"' in field
        assert 'aria-describedby="phone-hint phone-error"' in field
        # Nothing typed is lost.
        assert f'value="{htmllib.escape(phone)}"' in field
        assert ">Lost my phone entirely.</textarea>" in page
        assert re.search(r'value="phone" checked', page)
        assert 'value="mornings, after 9"' in page
    # The example itself, as shown, is accepted.
    r = await submit(client, html, "/login/recovery", phone=example, **typed)
    redirected_to(r, "/login/recovery?filed=1")


async def test_recovery_times_in_the_browsers_time_zone(client: httpx.AsyncClient,
                                                        clock: FrozenClock,
                                                        runtime: Runtime) -> None:
    await _at_second_factor(client, clock)
    html = await get(client, "/login/recovery")
    r = await submit(client, html, "/login/recovery", description="Lost my phone entirely.",
                     channel="email")
    redirected_to(r, "/login/recovery?filed=1")
    client.cookies.set("tz", "Europe/Moscow")
    html = await get(client, "/login/recovery")
    assert "Filed on Nov 22, 2026, 3:00\u202fPM (Moscow)." in html
    cancel = html.split('href="/recovery/cancel/')[1].split('"')[0]
    # Approved (as two members of support would), taking effect a day later.
    async with runtime.db() as db:
        await db.execute(update(RecoveryRequest).values(
            status="approved", effective_at=clock.now().replace(hour=18, minute=30)))
        await db.commit()
    html = await get(client, f"/recovery/cancel/{cancel}")
    assert "will be reset on Nov 22, 2026, 9:30\u202fPM (Moscow), unless" in html
    ru = spaced(await get(client, f"/recovery/cancel/{cancel}?lang=ru"))
    assert "будет сброшена 22 нояб. 2026 г., 21:30 (Москва)" in ru, ru

