"""Sign up, verify the e-mail with the code of the sign-up message, and confirm a
withdrawal with a code sent to that e-mail — in Debian's Chromium, under the real CSP
(issue 16, item 2). Until the address is verified the pages say so, and say that nothing
confirms a withdrawal yet. axe-core finds nothing at any step (tests/pages/axe.py)."""

from __future__ import annotations

import re
import uuid

from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PIN

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

pytestmark = chromium.BROWSER


def test_sign_up_verify_the_email_by_code_then_withdraw(server: str) -> None:
    from playwright.sync_api import Page, expect

    email = f"jane-{uuid.uuid4().hex[:8]}@example.com"
    masked = "j***@example.com"
    problems = chromium.ConsoleProblems(refusals=True)

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

    with chromium.launched() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
        page = chromium.new_page(context, problems)

        # Sign up: the methods page asks to verify the e-mail, and says that nothing
        # confirms a withdrawal yet.
        page.goto(f"{server}/signup")
        assert_axe_clean(page, "sign-up")
        chromium.sign_up(page, email)
        banner = page.locator("#verify-email-banner")
        expect(banner).to_contain_text("Verify your e-mail")
        expect(page.locator("#confirms-withdrawal")).to_contain_text("Nothing yet")
        assert_axe_clean(page, "methods, the e-mail not verified")
        page.screenshot(path=str(chromium.ARTIFACTS / "email-unverified.png"), full_page=True)

        # A withdrawal now is refused with what to do.
        page.get_by_role("link", name="New withdrawal").click()
        page.get_by_label("Amount").fill("0.25")
        page.get_by_label("Currency").fill("BTC")
        page.get_by_label("Destination").fill(DESTINATION)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "verify your e-mail address, or switch on a method for withdrawals")
        assert_axe_clean(page, "new withdrawal, refused before the e-mail is verified")

        # The code of the sign-up message verifies the address.
        banner.get_by_role("link", name="Enter the code").click()
        page.wait_for_url("**/settings/email")
        expect(page.locator("#verify-email-banner")).to_have_count(0)
        assert_axe_clean(page, "verify the e-mail")
        page.get_by_label("Code from the e-mail").fill(newest_code(page, verification=True))
        page.screenshot(path=str(chromium.ARTIFACTS / "email-verify-code.png"), full_page=True)
        page.get_by_role("button", name="Verify", exact=True).click()
        page.wait_for_url("**/settings/methods?done=email_verified")
        expect(page.get_by_role("status").first).to_contain_text(
            "Your e-mail address is verified.")
        expect(page.locator("#verify-email-banner")).to_have_count(0)
        expect(page.locator("#confirms-withdrawal")).to_contain_text(
            f"A code sent to your e-mail {masked}")
        assert_axe_clean(page, "methods, the e-mail verified")

        # The withdrawal: the PIN, then the code sent to the verified e-mail.
        page.get_by_role("link", name="New withdrawal").click()
        page.get_by_label("Amount").fill("0.25")
        page.get_by_label("Currency").fill("BTC")
        page.get_by_label("Destination").fill(DESTINATION)
        page.get_by_role("button", name="Continue").click()
        assert_axe_clean(page, "withdrawal: the PIN")
        page.get_by_label("PIN", exact=True).fill(PIN)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Enter the security code")).to_be_visible()
        assert_axe_clean(page, "withdrawal: the e-mail code")
        page.get_by_role("button", name="Send code").click()
        expect(page.get_by_role("status").first).to_contain_text(f"We sent a code to {masked}")
        assert_axe_clean(page, "withdrawal: the e-mail code sent")
        page.get_by_label("Security code", exact=True).fill(newest_code(page))
        page.get_by_role("button", name="Confirm withdrawal").click()
        expect(page.locator(".op-head .badge")).to_have_text("Confirmed")
        assert_axe_clean(page, "withdrawal confirmed by the e-mail code")
        page.screenshot(path=str(chromium.ARTIFACTS / "email-withdrawal-confirmed.png"),
                        full_page=True)

    assert not problems, problems
