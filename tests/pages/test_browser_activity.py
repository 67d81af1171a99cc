"""The activity page and the language switcher on a phone (390 px), in Debian's Chromium
(Playwright): one card per event that fits the screen, a long IPv6 address on one line,
times in the browser's time zone (portal.js sets the ``tz`` cookie and draws the page
again once), and the switcher in the header of a logged-in page, which saves Russian."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from stepup.config import Settings
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = chromium.BROWSER

# The longest form an address takes: it must never break across lines.
IPV6 = "2001:db8a:85a3:1234:5678:8a2e:3700:7334"  # 39 characters, none to spare


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    # Behind a proxy on 127.0.0.1, so the client's address is the one forwarded.
    yield from chromium.serve(settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]}))


def test_activity_cards_and_the_switcher_on_a_phone(server: str) -> None:
    from playwright.sync_api import expect

    email = f"activity-{uuid.uuid4().hex[:8]}@example.com"
    problems = chromium.ConsoleProblems()

    with chromium.launched() as browser:
        context = browser.new_context(locale="en-GB", timezone_id="Asia/Tokyo",
                                      extra_http_headers={"X-Forwarded-For": IPV6},
                                      **chromium.PHONE_CONTEXT)
        page = chromium.new_page(context, problems)
        page.goto(f"{server}/signup")
        assert_axe_clean(page, "sign-up (en)")
        chromium.sign_up(page, email)
        assert_axe_clean(page, "methods, logged in, with the switcher (en)")

        # Straight to the activity page in a fresh tab with no zone cookie yet: the page
        # is drawn in UTC, the script sets the cookie and draws it again in Tokyo time.
        context.clear_cookies(name="tz")
        page.goto(f"{server}/settings/activity")
        expect(page.locator("#activity-zone")).to_have_text(
            "Times are shown in your time zone: Tokyo (Asia/Tokyo).")
        cards = page.locator("#activity > li.event")
        expect(cards.first).to_contain_text("Logged in with the password")
        assert cards.count() == 3  # account created, its e-mail verification sent, logged in
        assert_axe_clean(page, "activity (en)")

        width = page.evaluate("window.innerWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for box in cards.evaluate_all("els => els.map(e => e.getBoundingClientRect())"):
            # One card per event, across the screen (less the page's margins).
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            assert box["width"] > width * 0.8
        ips = page.locator(".event-ip")
        expect(ips.first).to_have_text(IPV6)
        # The address is on one line, inside its card.
        assert set(ips.evaluate_all("els => els.map(e => e.getClientRects().length)")) == {1}
        fits = ips.evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right"
            " <= e.closest('li').getBoundingClientRect().right)")
        assert all(fits), fits
        # The facts stack on a phone: When above the address.
        when = cards.first.locator("time").bounding_box()
        ip = ips.first.bounding_box()
        assert when is not None and ip is not None and ip["y"] > when["y"]

        page.screenshot(path=str(chromium.ARTIFACTS / "activity-phone.png"), full_page=True)

        # The switcher is in the header, logged in: Russian, saved, on this very page.
        switch = page.locator("#lang-switch")
        expect(switch).to_be_visible()
        switch.get_by_role("button", name="Русский").click()
        page.wait_for_url("**/settings/activity")
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        expect(page.locator("h1")).to_have_text("Недавние события безопасности")
        expect(cards.first).to_contain_text("Язык страниц и сообщений изменён")
        expect(page.locator("#activity-zone")).to_have_text(
            "Время указано в вашем часовом поясе: Токио (Asia/Tokyo).")
        page.screenshot(path=str(chromium.ARTIFACTS / "activity-phone-ru.png"), full_page=True)
        assert_axe_clean(page, "activity (ru)")
        page.goto(f"{server}/settings/methods")
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_axe_clean(page, "methods, logged in, with the switcher (ru)")
        context.close()
    assert not problems, problems


def _tops(page: Page, selector: str) -> list[float]:
    """The top edge of each element ``selector`` finds, in whole pixels."""
    tops: list[float] = page.locator(selector).evaluate_all(
        "els => els.map(e => Math.round(e.getBoundingClientRect().top))")
    return tops


def test_the_logged_in_header_is_tidy_on_a_desktop_and_a_phone(server: str) -> None:
    """Logged in, with a long address, in both languages: on a desktop the brand, the
    address, "Log out" and the switcher share the first line and the links the second;
    on a phone (390 px) the switcher stays on the brand's line and nothing scrolls
    sideways. axe finds nothing in the header at either width."""
    from playwright.sync_api import expect

    email = f"a-rather-long-name-of-somebody-{uuid.uuid4().hex[:8]}@brokerage.example.com"
    with chromium.launched() as browser:
        page = chromium.new_page(browser, viewport={"width": 1280, "height": 800}, locale="en-GB")
        chromium.sign_up(page, email, base=server)
        for lang, other in (("en", "Русский"), ("ru", "English")):
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 800})
                assert page.evaluate("document.documentElement.scrollWidth") <= width, (
                    lang, width)
                [brand] = _tops(page, ".brand")
                [switch] = _tops(page, "#lang-switch")
                assert abs(switch - brand) <= 8, (lang, width, brand, switch)
                links = _tops(page, ".header-nav a")
                assert len(links) == 3 and min(links) > brand, (lang, width, links)
                if width > 390:
                    assert len(set(links)) == 1, (lang, width, links)
                    account = _tops(page, ".header-account > *")
                    assert all(abs(t - brand) <= 8 for t in account), (lang, width, account)
                right = page.locator(".site-header *").evaluate_all(
                    "els => Math.max(...els.map(e => e.getBoundingClientRect().right))")
                assert right <= width, (lang, width, right)
            page.set_viewport_size({"width": 1280, "height": 800})
            assert_axe_clean(page, f"methods, the logged-in header ({lang})")
            if lang == "en":
                page.locator("#lang-switch").get_by_role("button", name=other).click()
                page.wait_for_url("**/settings/methods")
                expect(page.locator("html")).to_have_attribute("lang", "ru")
