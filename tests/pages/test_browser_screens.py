"""The README's journey, in English and in Russian, in Debian's Chromium (Playwright):
sign up → verify the e-mail with the code of the sign-up message (from the development
outbox, entered on the page the banner links to) → the authenticator app (QR code and
key), used for login and withdrawals → backup codes → log out → log in (the second
factor, then a backup code) → a withdrawal confirmed with the app. axe-core finds nothing
at any step, on a computer and on a phone (tests/pages/axe.py).

With ``STEPUP_SCREENSHOTS=docs/img`` it also writes the README's pictures
(``<lang>-signup.png``, ``-methods``, ``-totp-setup``, ``-second-factor``,
``-withdrawal`` and ``-withdrawal-phone``) at a fixed 1024×720 window (390×844 for the
phone), for fixed accounts on a wiped database:

    STEPUP_SCREENSHOTS=docs/img pytest -q tests/pages/test_browser_screens.py

The steps find the fields by their names and the forms by their actions, not by their
words (the sign-up form by its labels in the page's language), so the one journey serves
both languages.
"""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.pages import browser_support as chromium
from tests.pages.axe import PHONE, assert_axe_clean, screenshot
from tests.pages.helpers import PIN

pytestmark = [*chromium.BROWSER, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

DESKTOP = {"width": 1024, "height": 720}
ACCOUNTS = {"en": "jane@example.com", "ru": "anna@example.com"}
DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
HEADINGS = {"en": "Authentication methods", "ru": "Способы аутентификации"}


def _step(t: float) -> int:
    return int(t // 30)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_readme_journey(server: str, lang: str) -> None:
    from playwright.sync_api import expect

    email = ACCOUNTS[lang]
    problems = chromium.ConsoleProblems()

    with chromium.launched() as browser:
        context = browser.new_context(viewport=DESKTOP, locale="en-GB" if lang == "en"
                                      else "ru-RU", timezone_id="Europe/London",
                                      color_scheme="light")
        page = chromium.new_page(context, problems)
        banner = page.locator("#verify-email-banner")

        def picture(name: str, **how: Any) -> None:
            # A README picture of a signed-in page: the e-mail is verified, no banner.
            expect(banner).to_have_count(0)
            screenshot(page, name, **how)

        # Sign up, in the page's language.
        page.goto(f"{server}/signup?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        chromium.sign_up(page, email, lang=lang, submit=False)
        assert_axe_clean(page, f"sign-up, filled in ({lang})")
        screenshot(page, f"{lang}-signup")
        page.click("form[action='/signup'] button[type=submit]")
        page.wait_for_url("**/settings/methods*")
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[lang])
        assert_axe_clean(page, f"methods after sign-up ({lang})")

        # Verify the e-mail as a client does: the banner's link, then the code of the
        # sign-up message. No page after this asks for it (nor shows it in a picture).
        banner.locator("a[href='/settings/email']").click()
        page.wait_for_url("**/settings/email")
        page.fill("input[name=code]", chromium.email_verification_code(page, server, email))
        assert_axe_clean(page, f"verify the e-mail, the code filled in ({lang})")
        page.click("form[action='/settings/email/confirm'] button[type=submit]")
        page.wait_for_url("**/settings/methods?done=email_verified*")
        expect(banner).to_have_count(0)
        assert_axe_clean(page, f"methods, the e-mail verified ({lang})")

        # The authenticator app: the PIN, then the QR code and the key, then a code.
        page.click("#method-totp a[href$='/totp/enable']")
        page.fill("input[name=pin]", PIN)
        page.click("form[action='/settings/methods/totp/enable'] button[type=submit]")
        expect(page.locator("figure.qr svg")).to_be_visible()
        assert_axe_clean(page, f"TOTP set-up: QR code and key ({lang})")
        picture(f"{lang}-totp-setup", centre="figure.qr")
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().replace(" ", ""))
        enrolled = _step(time.time())
        page.fill("input[name=code]", totp.at(enrolled * 30))
        page.click("form[action='/settings/methods/totp/confirm'] button[type=submit]")
        page.wait_for_url("**/settings/methods?done=enabled&method=totp*")

        # Its last step ticked "Use it for: Login, Withdrawal" (both by default): on for both.
        expect(page.locator("#method-totp [role=switch][aria-checked=true]")).to_have_count(2)
        assert_axe_clean(page, f"methods, the app on for login and withdrawals ({lang})")

        # Backup codes: shown once, Finish when they are saved.
        page.click("#method-backup_codes a[href$='/backup_codes/enable']")
        page.fill("input[name=pin]", PIN)
        page.click("form[action='/settings/methods/backup_codes/enable'] button[type=submit]")
        codes = page.locator("#backup-codes code").all_inner_texts()
        assert len(codes) == 10
        page.check("#saved")
        assert_axe_clean(page, f"backup codes, saved ({lang})")
        page.click("#finish")
        page.wait_for_url("**/settings/methods?done=enabled&method=backup_codes*")
        assert_axe_clean(page, f"methods: the app and backup codes ({lang})")
        picture(f"{lang}-methods")

        # Log out; log in: the second factor asks for the app's code; a backup code does.
        page.click("form[action='/logout'] button[type=submit]")
        page.wait_for_url("**/login?bye=1*")
        assert_axe_clean(page, f"login ({lang})")
        chromium.log_in(page, email, lang=lang)
        expect(page.locator("input[name=method]")).to_have_value("totp")
        assert_axe_clean(page, f"second factor: the app ({lang})")
        picture(f"{lang}-second-factor")
        page.click("a.channel[href$='method=backup_codes']")
        assert_axe_clean(page, f"second factor: a backup code ({lang})")
        page.fill("input[name=code]", codes[0])
        page.click("form[action='/login/second-factor'] button[type=submit]")
        page.wait_for_url("**/settings/methods*")

        # A withdrawal: the details, the PIN, then the app's code beside the details.
        page.goto(f"{server}/operations/new")
        page.fill("input[name=amount]", "0.25")
        page.fill("input[name=currency]", "BTC")
        page.fill("input[name=destination]", DESTINATION)
        assert_axe_clean(page, f"new withdrawal, filled in ({lang})")
        page.click("form[action='/operations/new'] button[type=submit]")
        page.fill("input[name=pin]", PIN)
        assert_axe_clean(page, f"withdrawal: the PIN ({lang})")
        page.click("form[action$='/pin'] button[type=submit]")
        expect(page.locator("form[action$='/confirm'] input[name=method]")).to_have_value("totp")
        # The code two steps after enrolling is accepted once the clock is one step on.
        wait = (enrolled + 1) * 30 - time.time()
        if wait > 0:
            time.sleep(wait + 0.5)
        page.fill("input[name=code]", totp.at((enrolled + 2) * 30))
        assert_axe_clean(page, f"withdrawal: the app's code ({lang})")
        picture(f"{lang}-withdrawal")
        page.set_viewport_size(PHONE)
        picture(f"{lang}-withdrawal-phone", full_page=True)
        page.set_viewport_size(DESKTOP)
        page.click("form[action$='/confirm'] button[type=submit]")
        expect(page.locator(".op-head .badge-on")).to_be_visible()
        assert_axe_clean(page, f"withdrawal confirmed ({lang})")
        page.goto(f"{server}/settings/activity")
        assert_axe_clean(page, f"recent security activity ({lang})")

        context.close()

    assert problems == []
