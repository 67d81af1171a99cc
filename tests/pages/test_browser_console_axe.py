"""Recovery and the support console in Debian's Chromium (Playwright), axe-clean at every
step on a computer and on a phone (tests/pages/axe.py).

A client locked out of their second factor asks for recovery (a refused form, then the
request, its status and its cancel page, in English and in Russian); a support agent
logs in to the console with their authenticator app, finds the account, opens it and
the request, and records incomplete checks (refused).
"""

from __future__ import annotations

import asyncio
import uuid

import pyotp
import pytest

from stepup.config import Settings
from stepup.domain.clock import SystemClock
from stepup.services import staff
from stepup.services.runtime import Actor, Runtime
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PIN

pytestmark = chromium.BROWSER

STAFF_PASSWORD = "staff-correct-horse-42"


def _agent(settings: Settings) -> staff.NewStaff:
    async def go() -> staff.NewStaff:
        rt = Runtime.build(settings, SystemClock())
        try:
            return await staff.create(rt, Actor(name="cli"),
                                      email=f"agent-{uuid.uuid4().hex[:8]}@example.com",
                                      name="Agent Smith", role="support",
                                      password=STAFF_PASSWORD)
        finally:
            await rt.engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_recovery_and_the_console(server: str, settings: Settings, lang: str) -> None:
    from playwright.sync_api import expect

    email = f"locked-{lang}-{uuid.uuid4().hex[:8]}@example.com"
    agent = _agent(settings)  # before Playwright's loop runs in this thread
    with chromium.launched() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = chromium.new_page(context)

        # A client with the authenticator app, at the second factor without it.
        page.goto(f"{server}/signup?lang={lang}")
        assert_axe_clean(page, f"sign-up ({lang})")
        chromium.sign_up(page, email, lang=lang)
        assert_axe_clean(page, f"methods after sign-up ({lang})")
        page.goto(f"{server}/settings/methods/totp/enable")
        assert_axe_clean(page, f"TOTP set-up: the PIN ({lang})")
        page.fill("input[name=pin]", PIN)
        page.click("form[action='/settings/methods/totp/enable'] button[type=submit]")
        assert_axe_clean(page, f"TOTP set-up: QR code and key ({lang})")
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("form[action='/settings/methods/totp/confirm'] button[type=submit]")
        page.wait_for_url("**/settings/methods?done=enabled*")
        assert_axe_clean(page, f"methods, the app enabled ({lang})")
        page.click("form[action='/logout'] button[type=submit]")
        page.wait_for_url("**/login?bye=1*")
        assert_axe_clean(page, f"login, after logging out ({lang})")
        chromium.log_in(page, email, lang=lang)
        assert_axe_clean(page, f"second factor: the app ({lang})")

        # Recovery: the form, refused, then sent; its status and its cancel page.
        page.click("a[href='/login/recovery']")
        assert_axe_clean(page, f"recovery request form ({lang})")
        page.fill("textarea[name=description]", "My phone is gone and so are my codes.")
        page.check("input[name=channel][value=phone]")  # and no number: refused
        page.click("form[action='/login/recovery'] button[type=submit]")
        expect(page.locator(".alert-error, .field-error").first).to_be_visible()
        assert_axe_clean(page, f"recovery request refused ({lang})")
        page.check("input[name=channel][value=email]")
        page.click("form[action='/login/recovery'] button[type=submit]")
        page.wait_for_url("**/login/recovery?filed=1")
        assert_axe_clean(page, f"recovery request sent ({lang})")
        cancel = page.locator("a[href^='/recovery/cancel/']").first.get_attribute("href")
        assert cancel
        page.goto(f"{server}{cancel}")
        assert_axe_clean(page, f"recovery cancel page ({lang})")

        # The console: staff log in with the app, find the account and the request.
        console = chromium.new_page(browser, viewport={"width": 1100, "height": 900},
                                    locale="en-GB")
        console.goto(f"{server}/admin/login")
        assert_axe_clean(console, "console login")
        console.fill("input[name=email]", agent.staff.email)
        console.fill("input[name=password]", STAFF_PASSWORD)
        console.click("form[action='/admin/login'] button[type=submit]")
        console.wait_for_url("**/admin/second-factor*")
        assert_axe_clean(console, "console second factor")
        console.fill("input[name=code]", pyotp.TOTP(agent.secret).now())
        console.click("form[action='/admin/second-factor'] button[type=submit]")
        console.wait_for_url("**/admin")
        assert_axe_clean(console, "console home: search and the recovery queue")
        console.fill("input[name=q]", email)
        console.click("form[action='/admin'] button[type=submit]")
        assert_axe_clean(console, "console search results")
        console.click("a[href^='/admin/users/']")
        assert_axe_clean(console, "console: the account")
        console.goto(f"{server}/admin")
        console.locator("a[href^='/admin/recovery/']").first.click()
        assert_axe_clean(console, "console: the recovery request")
        console.check("input[name=check_documents_seen]")
        console.click("form[action$='/check'] button[type=submit]")
        expect(console.locator(".alert-error")).to_be_visible()
        assert_axe_clean(console, "console: incomplete checks refused")
