"""Sign up, verify the e-mail with the code of the sign-up message, and confirm a
withdrawal with a code sent to that e-mail — in Debian's Chromium, under the real CSP
(issue 16, item 2). Until the address is verified the pages say so, and say that nothing
confirms a withdrawal yet."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from stepup.config import Settings
from tests.pages.helpers import PASSWORD, PIN
from tests.pages.test_browser import ARGS, ARTIFACTS, CHROMIUM, _serve

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) "
                       "is not installed: apt-get install chromium"),
]


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from _serve(settings)  # on a wiped database


def test_sign_up_verify_the_email_by_code_then_withdraw(server: str) -> None:
    from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    email = f"jane-{uuid.uuid4().hex[:8]}@example.com"
    masked = "j***@example.com"
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or (msg.type == "error" and (
                "status of 4" not in msg.text)):
            problems.append(f"{msg.type}: {msg.text}")

    def newest_code(page: Page, *, verification: bool = False) -> str:
        r = page.request.get(f"{server}/api/v1/dev/outbox", params={"to": email})
        for message in r.json()["messages"]:  # newest first
            body = str(message["body"])
            if verification and "/email/verify/" not in body:
                continue
            m = re.search(r"\b(\d{6})\b", body)
            if m:
                return m.group(1)
        raise AssertionError("no code in the outbox")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.set_default_timeout(15000)

        # Sign up: the methods page asks to verify the e-mail, and says that nothing
        # confirms a withdrawal yet.
        page.goto(f"{server}/signup")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("PIN", exact=True).fill(PIN)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url("**/settings/methods")
        banner = page.locator("#verify-email-banner")
        expect(banner).to_contain_text("Verify your e-mail")
        expect(page.locator("#confirms-withdrawal")).to_contain_text("Nothing yet")
        page.screenshot(path=str(ARTIFACTS / "email-unverified.png"), full_page=True)

        # A withdrawal now is refused with what to do.
        page.get_by_role("link", name="New withdrawal").click()
        page.get_by_label("Amount").fill("0.25")
        page.get_by_label("Currency").fill("BTC")
        page.get_by_label("Destination").fill(DESTINATION)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "verify your e-mail address, or switch on a method for withdrawals")

        # The code of the sign-up message verifies the address.
        banner.get_by_role("link", name="Enter the code").click()
        page.wait_for_url("**/settings/email")
        expect(page.locator("#verify-email-banner")).to_have_count(0)
        page.get_by_label("Code from the e-mail").fill(newest_code(page, verification=True))
        page.screenshot(path=str(ARTIFACTS / "email-verify-code.png"), full_page=True)
        page.get_by_role("button", name="Verify", exact=True).click()
        page.wait_for_url("**/settings/methods?done=email_verified")
        expect(page.get_by_role("status").first).to_contain_text(
            "Your e-mail address is verified.")
        expect(page.locator("#verify-email-banner")).to_have_count(0)
        expect(page.locator("#confirms-withdrawal")).to_contain_text(
            f"A code sent to your e-mail {masked}")

        # The withdrawal: the PIN, then the code sent to the verified e-mail.
        page.get_by_role("link", name="New withdrawal").click()
        page.get_by_label("Amount").fill("0.25")
        page.get_by_label("Currency").fill("BTC")
        page.get_by_label("Destination").fill(DESTINATION)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("PIN", exact=True).fill(PIN)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Enter the security code")).to_be_visible()
        page.get_by_role("button", name="Send code").click()
        expect(page.get_by_role("status").first).to_contain_text(f"We sent a code to {masked}")
        page.get_by_label("Security code", exact=True).fill(newest_code(page))
        page.get_by_role("button", name="Confirm withdrawal").click()
        expect(page.locator(".op-head .badge")).to_have_text("Confirmed")
        page.screenshot(path=str(ARTIFACTS / "email-withdrawal-confirmed.png"), full_page=True)
        browser.close()

    assert not problems, problems
