"""A forgotten password in Debian's Chromium (Playwright), in Russian on a phone: "Забыли
пароль?" on the login page → the e-mail's link → a new password → the login with it
still asks for the second factor (the reset logs nobody in and forgets no factor). Then
the PIN is changed on the Account security page with the password and a code. At every
step axe finds nothing (at 390 px and at 1280 px), no English word is left in a Russian
page, and no console error or CSP violation happens."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pyotp
import pytest

from stepup.config import Settings
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.browser_support import assert_russian
from tests.pages.helpers import PIN

pytestmark = chromium.BROWSER

NEW_PASSWORD = "quiet-meadow-41-otters"
LINK = re.compile(r"/password/reset\?token=[A-Za-z0-9_-]+")


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    # Notices (and the reset link) leave the queue within a fifth of a second.
    yield from chromium.serve(settings.model_copy(update={"notification_poll_seconds": 0.2}))


def test_forgot_password_reset_then_the_second_factor_is_still_asked(server: str) -> None:
    from playwright.sync_api import expect

    email = f"reset-{uuid.uuid4().hex[:8]}@example.com"
    problems = chromium.ConsoleProblems(refusals=True)  # the empty new password: 422
    with chromium.launched() as browser:
        context = browser.new_context(locale="ru-RU", **chromium.PHONE_CONTEXT)
        page = chromium.new_page(context, problems)
        page.goto(f"{server}/signup?lang=ru")
        assert_russian(page, "sign-up (ru)")
        chromium.sign_up(page, email, lang="ru")
        assert_russian(page, "methods, after sign-up (ru)")

        # Other pages' fields by id: their words are not this test's to pin down.
        page.goto(f"{server}/settings/methods/totp/enable")
        assert_russian(page, "TOTP set-up: the PIN (ru)")
        page.locator("#pin").fill(PIN)
        page.locator("form button[type=submit]").last.click()
        expect(page.locator("figure.qr svg")).to_be_visible()
        assert_russian(page, "TOTP set-up: QR code and key (ru)")
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        totp = pyotp.TOTP(secret)
        page.locator("#code").fill(totp.now())
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url("**/settings/methods?done=enabled&method=totp")
        expect(page.get_by_role("link", name="Сменить пароль или ПИН-код")).to_be_visible()
        assert_russian(page, "methods, the app enabled (ru)")

        # Another phone, where the password is forgotten.
        other = browser.new_context(locale="ru-RU", **chromium.PHONE_CONTEXT)
        lost = chromium.new_page(other, problems)
        lost.goto(f"{server}/login?lang=ru")
        assert_russian(lost, "login (ru)")
        lost.get_by_role("link", name="Забыли пароль?").click()
        lost.wait_for_url("**/password/forgot")
        assert_russian(lost, "forgot password (ru)")
        lost.locator("#email").fill(email)
        lost.get_by_role("button", name="Отправить ссылку").click()
        expect(lost.locator("#reset-sent")).to_contain_text("Если учётная запись")
        assert_russian(lost, "forgot password, link sent (ru)")
        link = None
        for _ in range(50):
            r = lost.request.get(f"{server}/api/v1/dev/outbox", params={"to": email})
            found = [LINK.search(m["body"]) for m in r.json()["messages"]]
            link = next((f.group(0) for f in found if f), None)
            if link:
                break
            time.sleep(0.2)
        assert link, "no reset link in the outbox"
        lost.goto(server + link)
        lost.wait_for_url("**/password/reset")  # the token is out of the address
        assert_russian(lost, "new password form (ru)")
        lost.get_by_role("button", name="Сохранить новый пароль").click()  # empty
        assert_russian(lost, "new password form, refused (ru)")
        lost.get_by_label("Новый пароль").fill(NEW_PASSWORD)
        lost.get_by_role("button", name="Сохранить новый пароль").click()
        # The authenticator app protects login: the page may say the code is still asked.
        expect(lost.locator("#reset-done")).to_contain_text(
            "код подтверждения по-прежнему потребуется")
        assert_russian(lost, "password changed (ru)")

        # The first phone's session ended with every other one.
        page.goto(f"{server}/settings/methods")
        page.wait_for_url("**/login**")
        assert_russian(page, "login, the session ended by the reset (ru)")

        # The new password opens the second step, not the account.
        lost.locator("main a[href='/login']").click()
        lost.wait_for_url("**/login")
        assert_russian(lost, "login, after the reset (ru)")
        chromium.log_in(lost, email, lang="ru", password=NEW_PASSWORD)
        assert_russian(lost, "second factor (ru)")
        now = time.time()
        used = int(now // 30) + 1  # the next time step: the current one enabled the app
        lost.locator("#code").fill(totp.at(now + 30))
        lost.locator("form button[type=submit]").last.click()
        lost.wait_for_url("**/settings/methods**")
        assert_russian(lost, "methods, logged in with the new password (ru)")

        # Changing the PIN: the password and a code from the authenticator app.
        lost.goto(f"{server}/settings/security")
        expect(lost.get_by_role("heading", name="Безопасность учётной записи")).to_be_visible()
        assert_russian(lost, "account security (ru)")
        lost.locator("#pin_password").fill(NEW_PASSWORD)
        lost.get_by_label("Новый ПИН-код").fill("582046")
        while int(time.time() // 30) < used:  # a time step is accepted once
            time.sleep(0.5)
        lost.locator("#code").fill(totp.at(time.time() + 30))
        lost.get_by_role("button", name="Сменить ПИН-код").click()
        lost.wait_for_url("**/settings/security?done=pin")
        expect(lost.locator(".alert-success")).to_contain_text("ПИН-код изменён.")
        assert lost.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert_russian(lost, "account security, PIN changed (ru)")
        # The same pages in English (the switcher saves the language for the account).
        lost.locator("#lang-switch").get_by_role("button", name="English").click()
        lost.wait_for_url("**/settings/security**")
        expect(lost.locator("html")).to_have_attribute("lang", "en")
        assert_axe_clean(lost, "account security (en)")
        lost.goto(f"{server}/password/forgot?lang=en")
        assert_axe_clean(lost, "forgot password (en)")
        lost.goto(f"{server}/password/reset?token=not-a-real-token&lang=en")
        assert_axe_clean(lost, "reset link not valid (en)")

    assert problems == [], problems
