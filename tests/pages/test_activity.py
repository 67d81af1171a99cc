"""Settings → Recent security activity: the user's own events, each in a whole sentence
of the page's language, times in the browser's time zone (named), addresses that never
break, one card per event; CSP-clean, linked from the methods page, and only for a
logged-in user."""

from __future__ import annotations

import re

import httpx

from stepup.domain.clock import FrozenClock
from tests.pages.helpers import EMAIL, PASSWORD, check, enable_totp, form, get, log_out, sign_up
from tests.pages.test_operations import new_withdrawal, switch_on_withdrawal

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def cards(html: str) -> list[str]:
    return re.findall(r'<li class="event".*?</li>', html, flags=re.S)


def rows(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in cards(html)]


async def test_activity_page_lists_my_events(client: httpx.AsyncClient,
                                            clock: FrozenClock) -> None:
    await sign_up(client, "omar@example.com")
    await log_out(client)
    await sign_up(client)
    await enable_totp(client, clock)
    methods = await get(client, "/settings/methods")
    assert 'href="/settings/activity"' in methods
    html = await get(client, "/settings/activity", headers={"User-Agent": FIREFOX})
    assert "<h1>Recent security activity</h1>" in html
    shown = rows(html)
    # No zone cookie: UTC, and the page says so.
    assert "Times are shown in UTC (coordinated universal time)" in html
    assert "data-tz-missing" in html
    # What it protects was chosen at its set-up: audited as a switch, after the enabling.
    assert shown[0].startswith("What an authentication method protects was changed When "
                               "Nov 22, 2026, 12:00 PM"), shown[0]
    assert shown[1].startswith("Authentication method enabled When Nov 22, 2026, 12:00 PM "
                               "Method Authenticator app IP address 203.0.113.7"), shown[1]
    assert shown[2].startswith("Set-up of an authentication method started")
    assert any(s.startswith("E-mail address verified When") for s in shown), shown
    assert shown[-1].startswith("Account created When Nov 22, 2026, 12:00 PM")
    # Created, verification code sent, e-mail verified, logged in, setup started,
    # enabled, switched: only jane's.
    assert len(shown) == 7, shown
    assert "omar" not in html
    # Never a raw id of an event, a purpose or a method.
    assert not re.search(r"\b(method|account|login|code)\.[a-z_]+\b", " ".join(shown))
    assert "totp" not in " ".join(shown)
    # A list of cards, not a table; the address in an unbreakable <bdi>.
    assert "<table" not in html and '<ol class="activity-list" id="activity">' in html
    assert '<bdi class="event-ip" dir="ltr">203.0.113.7</bdi>' in html
    assert '<time datetime="2026-11-22T12:00:00Z">' in html


async def test_times_in_the_browsers_time_zone(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    client.cookies.set("tz", "Europe/Berlin")
    html = await get(client, "/settings/activity")
    assert "Times are shown in your time zone: Berlin (Europe/Berlin)." in html
    assert "data-tz-missing" not in html
    assert rows(html)[0].startswith("E-mail address verified When Nov 22, 2026, 1:00 PM")
    # Russian: Babel's Russian date, the city in Russian.
    client.cookies.set("tz", "Asia/Yekaterinburg")
    ru = await get(client, "/settings/activity?lang=ru")
    assert "Время указано в вашем часовом поясе: Екатеринбург (Asia/Yekaterinburg)." in ru
    assert "22 нояб. 2026 г., 17:00" in rows(ru)[0]


async def test_the_code_that_verifies_the_email_is_told_and_the_password_linked(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/settings/activity")
    assert any(r.startswith("Security code sent to verify your e-mail address When")
               for r in rows(html)), rows(html)
    assert '<a href="/settings/security" id="change-password">Change password</a>' in html
    ru = await get(client, "/settings/activity?lang=ru")
    assert any(r.startswith("Код подтверждения отправлен для подтверждения адреса "
                            "электронной почты Когда") for r in rows(ru)), rows(ru)
    assert '<a href="/settings/security" id="change-password">Сменить пароль</a>' in ru


async def test_a_zone_that_is_not_a_zone_is_ignored(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    for bad in ("Mars/Olympus", "../../etc/passwd", "Europe/Berlin/../UTC", "x" * 200, ""):
        client.cookies.set("tz", bad)
        html = await get(client, "/settings/activity")
        assert "Times are shown in UTC (coordinated universal time)" in html, bad
        assert "Nov 22, 2026, 12:00\u202fPM" in html  # a narrow no-break space
        # A cookie was sent: the script must not reload the page for ever.
        assert "data-tz-missing" not in html


async def test_new_device_login_is_marked_and_russian(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    await log_out(client)
    # Logging in again from another browser: a new device.
    html = await get(client, "/login")
    fields = {**form(html, "/login").fields, "email": EMAIL, "password": PASSWORD}
    r = await client.post("/login", data=fields, headers={"User-Agent": FIREFOX})
    assert r.status_code == 303, r.text
    page = await get(client, "/settings/activity")
    assert "<h1>Недавние события безопасности</h1>" in page
    first = rows(page)[0]
    assert first.startswith("Вход по паролю Новое устройство Когда 22 нояб. 2026 г., 12:00")
    assert "Firefox 128" in first
    # The one before it, from the sign-up browser, is not new.
    assert "Новое устройство" not in rows(page)[1]
    assert "Время указано в UTC" in page


async def test_a_wrong_pin_for_a_withdrawal_is_told_in_words(client: httpx.AsyncClient,
                                                             clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    url = await new_withdrawal(client)
    html = await get(client, url)
    check(await client.post(f"{url}/pin", data={**form(html, f"{url}/pin").fields,
                                                 "pin": "000000"}), 400)
    html = await get(client, "/settings/activity")
    shown = rows(html)
    assert shown[0].startswith("Wrong PIN entered while confirming a withdrawal When"), shown
    assert "Method" not in shown[0]  # "operation:withdrawal" is not a method
    assert shown[1].startswith("Withdrawal started")
    assert any(r.startswith("What an authentication method protects was changed When")
               and "Method Authenticator app" in r for r in shown)
    ru = rows(await get(client, "/settings/activity?lang=ru"))
    assert ru[0].startswith("Неверный ПИН-код при подтверждении вывода средств Когда"), ru[0]
    assert any(r.startswith("Изменено, что защищает способ аутентификации") for r in ru)


async def test_activity_needs_a_login(client: httpx.AsyncClient) -> None:
    r = await client.get("/settings/activity")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
