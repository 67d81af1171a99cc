""""Remember this device" at the second factor, and Remembered devices on the methods page:
the cookie, the skipped second factor, Forget (one, all), and forgetting on any change."""

from __future__ import annotations

import re

import httpx

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.web.app import create_app
from tests.pages.helpers import (
    PIN,
    check,
    enable_backup_codes,
    enable_totp,
    get,
    log_in,
    log_out,
    redirected_to,
    secret_from,
    sign_up,
    spaced,
    submit,
    totp_now,
)
from tests.pages.test_operations import switch_on_withdrawal

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")


def devices_section(html: str) -> str:
    m = re.search(r'<section class="card devices" id="devices".*?</section>', html, flags=re.S)
    assert m, "no Remembered devices section"
    return m.group(0)


async def second_factor(client: httpx.AsyncClient, secret: str, clock: FrozenClock,
                        remember: bool) -> httpx.Response:
    r = await log_in(client)
    redirected_to(r, "/login/second-factor")
    html = await get(client, "/login/second-factor")
    assert "Remember this device for 30 days" in html
    extra = {"remember_device": "1"} if remember else {}
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock),
                     **extra)
    clock.advance(30)
    return r


async def test_remember_then_skip_then_forget(client: httpx.AsyncClient,
                                              clock: FrozenClock) -> None:
    client.headers["user-agent"] = CHROME
    await sign_up(client)
    secret = await enable_totp(client, clock)
    html = await get(client, "/settings/methods")
    section = devices_section(html)
    assert "No device is remembered" in section
    assert "never skips a withdrawal" in section
    assert "Any change to your authentication methods forgets all remembered devices" in section
    await log_out(client)

    r = await second_factor(client, secret, clock, remember=True)
    redirected_to(r, "/settings/methods")
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("stepup_device="))
    assert "HttpOnly" in cookie and "Max-Age=2592000" in cookie and "Path=/" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie  # http test server

    section = devices_section(await get(client, "/settings/methods"))
    assert "Chrome 126 on Linux" in section and "This device" in section
    assert "2026-11-22 12:00 UTC" in section and "2026-12-22 12:00 UTC" in section
    assert "Not yet" in section

    # Next login: the password is enough.
    await log_out(client)
    r = await log_in(client)
    redirected_to(r, "/settings/methods")
    section = devices_section(await get(client, "/settings/methods"))
    assert "Not yet" not in section

    # Forget it: the next login asks for the second factor again, and the cookie goes.
    device_id = re.search(r'/settings/devices/([0-9a-z]+)/forget', section)
    assert device_id
    html = await get(client, "/settings/methods")
    r = await submit(client, html, f"/settings/devices/{device_id.group(1)}/forget")
    assert redirected_to(r, "/settings/methods?done=device_forgotten")
    assert any(c.startswith("stepup_device=") and "Max-Age=0" in c
               for c in r.headers.get_list("set-cookie"))
    html = await get(client, "/settings/methods?done=device_forgotten")
    assert "The device is forgotten" in html
    assert "No device is remembered" in devices_section(html)
    await log_out(client)
    r = await log_in(client)
    redirected_to(r, "/login/second-factor")


async def test_forget_all_and_a_stolen_cookie(client: httpx.AsyncClient,
                                              clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await log_out(client)
    await second_factor(client, secret, clock, remember=True)
    token = client.cookies.get("stepup_device")
    assert token
    await log_out(client)
    client.cookies.delete("stepup_device")  # another browser
    await second_factor(client, secret, clock, remember=True)
    html = await get(client, "/settings/methods")
    assert devices_section(html).count('class="device"') == 2

    check(await client.post("/settings/devices/forget-all", data={"csrf_token": "x"}), 403)
    assert devices_section(await get(client, "/settings/methods")).count('class="device"') == 2
    r = await submit(client, html, "/settings/devices/forget-all")
    redirected_to(r, "/settings/methods?done=devices_forgotten")
    html = await get(client, "/settings/methods?done=devices_forgotten")
    assert "All remembered devices are forgotten" in html
    await log_out(client)
    client.cookies.set("stepup_device", token)  # an old token is no use any more
    redirected_to(await log_in(client), "/login/second-factor")


async def test_unticked_remembers_nothing_and_a_method_change_forgets(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await log_out(client)
    r = await second_factor(client, secret, clock, remember=False)
    assert not any(c.startswith("stepup_device=") for c in r.headers.get_list("set-cookie"))
    await log_out(client)
    await second_factor(client, secret, clock, remember=True)
    await enable_backup_codes(client)  # a change to the methods forgets every device
    assert "No device is remembered" in devices_section(await get(client, "/settings/methods"))
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")


async def test_the_checkbox_survives_a_wrong_code(client: httpx.AsyncClient,
                                                  clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    await log_out(client)
    await log_in(client)
    html = await get(client, "/login/second-factor")
    r = await submit(client, html, "/login/second-factor", code="000000", remember_device="1")
    html = check(r, 400)
    assert re.search(r'name="remember_device" value="1"\s+aria-describedby="remember-hint"'
                     r' checked', html)


def withdrawal_sentence(html: str) -> str:
    section = " ".join(re.sub(r"<[^>]+>", " ", devices_section(html)).split())
    m = re.search(r"It never skips a withdrawal: [^.]*\.", section)
    assert m, section
    return m.group(0)


async def test_the_card_says_what_a_withdrawal_asks_under_always(
        client: httpx.AsyncClient) -> None:
    """WITHDRAWAL_CODE=always (the default): with no method, a code goes to the e-mail."""
    await sign_up(client)
    html = await get(client, "/settings/methods")
    assert withdrawal_sentence(html) == ("It never skips a withdrawal: withdrawals always "
                                         "ask for your PIN and a security code.")


async def test_the_card_says_what_a_withdrawal_asks_under_if_protected(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    """WITHDRAWAL_CODE=if_protected with no method switched on for withdrawals: the PIN
    alone confirms one, and the card must not claim a security code (in either
    language); once a method protects withdrawals, it asks for one."""
    lenient = settings.model_copy(update={"withdrawal_code": "if_protected"})
    rt = Runtime.build(lenient, runtime.clock)
    app = create_app(lenient, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await sign_up(c)
            html = await get(c, "/settings/methods/totp/enable")
            html = check(await submit(c, html, "/settings/methods/totp/enable", pin=PIN))
            secret = secret_from(html)
            r = await submit(c, html, "/settings/methods/totp/confirm",
                             code=totp_now(secret, clock), protect_withdrawal="")
            redirected_to(r, "/settings/methods?done=enabled")  # for login only
            clock.advance(30)
            html = await get(c, "/settings/methods")
            assert "Your PIN only" in html
            assert withdrawal_sentence(html) == ("It never skips a withdrawal: withdrawals "
                                                 "always ask for your PIN.")
            html = await get(c, "/settings/methods?lang=ru")
            assert "для него всегда нужен ПИН-код." in html
            assert "ПИН-код и код подтверждения" not in html
            await switch_on_withdrawal(c, secret, clock)
            html = await get(c, "/settings/methods?lang=en")
            assert "Your PIN only" not in html
            assert withdrawal_sentence(html) == ("It never skips a withdrawal: withdrawals "
                                                 "always ask for your PIN and a security "
                                                 "code.")
    finally:
        await rt.engine.dispose()


async def test_russian_devices_section(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    section = devices_section(await get(client, "/settings/methods"))
    assert "Запомненные устройства" in section


async def test_device_times_in_the_browsers_time_zone(client: httpx.AsyncClient,
                                                      clock: FrozenClock) -> None:
    client.headers["user-agent"] = CHROME
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await log_out(client)
    redirected_to(await second_factor(client, secret, clock, remember=True), "/settings/methods")
    client.cookies.set("tz", "Europe/Moscow")
    section = devices_section(await get(client, "/settings/methods"))
    assert "Nov 22, 2026, 3:00\u202fPM (Moscow)" in section  # remembered on
    assert "Dec 22, 2026, 3:00\u202fPM (Moscow)" in section  # expires
    assert "UTC" not in section
    ru = spaced(devices_section(await get(client, "/settings/methods?lang=ru")))
    assert "22 нояб. 2026 г., 15:00 (Москва)" in ru and "22 дек. 2026 г., 15:00 (Москва)" in ru

