"""Settings → Recent security activity: the user's own events, localised, CSP-clean,
linked from the methods page, and only for a logged-in user."""

from __future__ import annotations

import re

import httpx

from stepup.domain.clock import FrozenClock
from tests.pages.helpers import EMAIL, PASSWORD, enable_totp, form, get, log_out, sign_up

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def rows(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r'<tr class="event".*?</tr>', html, flags=re.S)]


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
    assert shown[0].startswith("2026-11-22 12:00 UTC Method enabled · Authenticator app")
    assert "203.0.113.7" in shown[0]
    assert shown[-1].startswith("2026-11-22 12:00 UTC Account created")
    # Created, verification code sent, e-mail verified, logged in, setup started,
    # enabled: only jane's.
    assert len(shown) == 6
    assert "omar" not in html


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
    assert first.startswith("2026-11-22 12:00 UTC Вход выполнен")
    assert "Новое устройство" in first and "Firefox 128" in first
    # The one before it, from the sign-up browser, is not new.
    assert "Новое устройство" not in rows(page)[1]


async def test_activity_needs_a_login(client: httpx.AsyncClient) -> None:
    r = await client.get("/settings/activity")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
