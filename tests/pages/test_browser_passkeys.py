"""Passkeys in Debian's Chromium (Playwright) with a virtual authenticator (Chrome
DevTools' WebAuthn domain), under the real CSP: the browser really makes the credential
and signs each challenge; the server really checks them.

Enable (PIN, then Create passkey) → log out → log in with the passkey → switch it On for
Withdrawal → a withdrawal confirmed with it → Disable, in English and in Russian, axe-clean
at every step. Passkeys need a host name, not an
IP address, so this server's PUBLIC_URL is http://localhost:PORT.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from stepup.config import Settings
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PIN
from tests.support.server import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [*chromium.BROWSER, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    port = free_port()
    base = f"http://localhost:{port}"
    for _ in chromium.serve(settings.model_copy(update={"public_url": base}), port):
        yield base


def _sign_up_and_enable(page: Page, base: str, email: str, lang: str = "en") -> None:
    """A new account, then Passkeys → Enable and the PIN: the Create passkey page."""
    _ = chromium.words(lang)
    chromium.sign_up(page, email, base=base, lang=lang)
    page.click("#method-webauthn a[href$='/webauthn/enable']")
    assert_axe_clean(page, f"passkey set-up: the PIN ({lang})")
    page.get_by_label(_("PIN"), exact=True).fill(PIN)
    page.get_by_role("button", name=_("Verify")).click()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_passkey_from_enrolment_to_withdrawal(server: str, lang: str) -> None:
    from playwright.sync_api import expect

    _ = chromium.words(lang)
    email = f"passkey-{uuid.uuid4().hex[:8]}@example.com"
    problems = chromium.ConsoleProblems()

    with chromium.launched() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900},
                                      locale=chromium.LOCALES[lang])
        page = chromium.new_page(context, problems)
        devtools = context.new_cdp_session(page)
        devtools.send("WebAuthn.enable")
        authenticator = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})["authenticatorId"]

        def signatures() -> int:
            creds = devtools.send("WebAuthn.getCredentials",
                                  {"authenticatorId": authenticator})["credentials"]
            return int(creds[0]["signCount"]) if creds else -1

        # Enable: the PIN, then the browser makes the passkey.
        _sign_up_and_enable(page, server, email, lang)
        expect(page.get_by_role("button", name=_("Create passkey"))).to_be_visible()
        assert_axe_clean(page, f"passkey set-up: Create passkey ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"passkey-enroll-{lang}.png"),
                        full_page=True)
        # Login only for now ("Use it for"): withdrawals are switched on below.
        page.get_by_role("checkbox", name=_("Withdrawal")).uncheck()
        page.get_by_role("button", name=_("Create passkey")).click()
        page.wait_for_url("**/settings/methods?done=enabled&method=webauthn")
        expect(page.locator("#method-webauthn .badge")).to_have_text(_("Enabled"))
        expect(page.locator("#method-webauthn .passkey-name")).to_have_text(
            [_("Passkey %(num)d", num=1)])
        assert_axe_clean(page, f"methods, a passkey enabled ({lang})")
        page.locator("#method-webauthn").screenshot(
            path=str(chromium.ARTIFACTS / f"passkey-methods-{lang}.png"))
        assert signatures() >= 0  # the virtual authenticator holds it

        # Log out; log in with the password and the passkey (the first method protects
        # login).
        page.get_by_role("button", name=_("Log out")).click()
        page.wait_for_url("**/login?bye=1")
        assert_axe_clean(page, f"login, after logging out ({lang})")
        chromium.log_in(page, email, lang=lang)
        expect(page.get_by_text(_("Use your passkey to finish logging in."))).to_be_visible()
        assert_axe_clean(page, f"second factor: passkey ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"passkey-login-{lang}.png"),
                        full_page=True)
        before = signatures()
        page.get_by_role("button", name=_("Log in with your passkey")).click()
        page.wait_for_url("**/settings/methods")
        assert signatures() > before  # the authenticator signed this login
        assert_axe_clean(page, f"methods, logged in with a passkey ({lang})")

        # Switch it On for Withdrawal: confirmed with the passkey.
        page.locator("#method-webauthn a.switch[href*='op=withdrawal']").click()
        assert_axe_clean(page, f"switch passkeys on for withdrawals ({lang})")
        page.get_by_role("button", name=_("Verify")).click()
        page.wait_for_url("**/settings/methods?done=switched&method=webauthn")
        expect(page.locator("#method-webauthn a.switch[href*='op=withdrawal']")
               ).to_have_attribute("aria-checked", "true")
        assert_axe_clean(page, f"methods, passkeys on for withdrawals ({lang})")

        # A withdrawal: the PIN, then the passkey, beside the details.
        page.goto(f"{server}/operations/new")
        page.get_by_label(_("Amount")).fill("0.25" if lang == "en" else "0,25")
        page.get_by_label(_("Currency")).fill("BTC")
        page.get_by_label(_("Destination")).fill(
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
        assert_axe_clean(page, f"new withdrawal, filled in ({lang})")
        page.get_by_role("button", name=_("Continue")).click()
        assert_axe_clean(page, f"withdrawal: the PIN ({lang})")
        page.get_by_label(_("PIN"), exact=True).fill(PIN)
        page.get_by_role("button", name=_("Continue")).click()
        expect(page.get_by_role("heading", name=_("Confirm with your passkey"))).to_be_visible()
        assert_axe_clean(page, f"withdrawal: the passkey ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"passkey-withdrawal-{lang}.png"),
                        full_page=True)
        page.get_by_role("button", name=_("Confirm withdrawal")).click()
        expect(page.locator(".op-method")).to_have_text(_("Passkeys"))
        assert_axe_clean(page, f"withdrawal confirmed with a passkey ({lang})")

        # Disable, with the passkey.
        page.goto(f"{server}/settings/methods")
        page.locator("#method-webauthn").get_by_role(
            "link", name=_("Disable passkeys")).click()
        assert_axe_clean(page, f"disable passkeys ({lang})")
        page.get_by_role("button", name=_("Disable")).click()
        page.wait_for_url("**/settings/methods?done=disabled&method=webauthn")
        expect(page.locator("#method-webauthn .badge")).to_have_text(_("Disabled"))
        assert_axe_clean(page, f"methods, passkeys disabled ({lang})")

        context.close()

    assert problems == []


def test_the_page_says_where_passkeys_work_when_opened_elsewhere(server: str) -> None:
    # The same server by its IP address, where the browser would refuse the passkey:
    # the page says which site to open instead of failing with a vague error.
    from playwright.sync_api import expect

    by_ip = server.replace("localhost", "127.0.0.1")
    with chromium.launched() as browser:
        page = chromium.new_page(browser, locale="en-GB")
        _sign_up_and_enable(page, by_ip, f"elsewhere-{uuid.uuid4().hex[:8]}@example.com")
        expect(page.get_by_text("Passkeys for this account work on localhost only")
               ).to_be_visible()
        expect(page.get_by_role("button", name="Create passkey")).to_be_disabled()
        assert_axe_clean(page, "passkey set-up on the wrong site")
