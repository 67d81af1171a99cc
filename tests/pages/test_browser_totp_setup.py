"""The authenticator-app set-up on a phone, in Debian's Chromium (Playwright): the key
wraps only between its groups of four, "Open in authenticator app" is shown on the
phone (and not on a computer), and a mistyped code keeps the same key on screen; in
English and in Russian, axe-clean at every step."""

from __future__ import annotations

import uuid

import pyotp
import pytest

from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PIN

pytestmark = chromium.BROWSER

PHONE = {"viewport": {"width": 320, "height": 740}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_totp_set_up_on_a_phone_forgives_a_typo(server: str, lang: str) -> None:
    from playwright.sync_api import expect

    _ = chromium.words(lang)
    email = f"phone-{uuid.uuid4().hex[:8]}@example.com"
    with chromium.launched() as browser:
        context = browser.new_context(locale=chromium.LOCALES[lang], **PHONE)  # type: ignore[arg-type]
        page = chromium.new_page(context)
        chromium.sign_up(page, email, base=server, lang=lang)

        page.goto(f"{server}/settings/methods/totp/enable")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_axe_clean(page, f"TOTP set-up on a phone: the PIN ({lang})")
        page.get_by_label(_("PIN"), exact=True).fill(PIN)
        page.get_by_role("button", name=_("Verify")).click()
        expect(page.locator("figure.qr svg")).to_be_visible()
        link = page.get_by_role("link", name=_("Open in authenticator app"))
        expect(link).to_be_visible()
        assert (link.get_attribute("href") or "").startswith("otpauth://totp/")
        assert_axe_clean(page, f"TOTP set-up on a phone: QR code, key and app link ({lang})")
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        # Every group of four sits on one line: never broken inside, even at 320 px.
        lines = page.locator(".secret-group").evaluate_all(
            "els => els.map(e => e.getClientRects().length)")
        assert len(lines) == len(secret) // 4 and set(lines) == {1}, lines
        # The key wraps (between groups) rather than overflowing the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # A typo: the same key and QR code are still there.
        page.get_by_label(_("Security code"), exact=True).fill("000000")
        page.get_by_role("button", name=_("Confirm")).click()
        expect(page.locator(".alert-error")).to_be_visible()
        expect(page.locator("figure.qr svg")).to_be_visible()
        assert_axe_clean(page, f"TOTP set-up on a phone: a mistyped code ({lang})")
        assert page.locator("#totp-secret").inner_text().replace(" ", "") == secret
        page.get_by_label(_("Security code"), exact=True).fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name=_("Confirm")).click()
        page.wait_for_url("**/settings/methods?done=enabled&method=totp")
        assert_axe_clean(page, f"methods on a phone, TOTP enabled ({lang})")

        # On a computer the link is not offered: the QR code is the way there.
        desktop = browser.new_context(viewport={"width": 1100, "height": 900},
                                      locale=chromium.LOCALES[lang])
        other = desktop.new_page()
        chromium.sign_up(other, "desk-" + email, base=server, lang=lang)
        other.goto(f"{server}/settings/methods/totp/enable")
        other.get_by_label(_("PIN"), exact=True).fill(PIN)
        other.get_by_role("button", name=_("Verify")).click()
        expect(other.locator("figure.qr svg")).to_be_visible()
        expect(other.get_by_role("link", name=_("Open in authenticator app"))).to_be_hidden()
        assert_axe_clean(other, f"TOTP set-up on a computer ({lang})")
