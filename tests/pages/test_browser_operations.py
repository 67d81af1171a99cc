"""A withdrawal that a portal created through the integration API, confirmed by the user
in Debian's Chromium (Playwright), under the real CSP: the link sends them to log in,
back to the operation, PIN, an SMS code beside the details, and the receipt, which the
test then verifies with joserfc against /.well-known/jwks.json. In English and in
Russian, axe-clean at every step.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from stepup.config import Settings
from stepup.domain.clock import SystemClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PASSWORD, PIN

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

pytestmark = [*chromium.BROWSER, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]


def _app_key(settings: Settings) -> str:
    async def go() -> str:
        rt = Runtime.build(settings, SystemClock())
        try:
            # Its users confirm on StepUp's own pages: a key of the app "portal".
            _, key = await apikeys.create(rt, "portal", "app", Actor(), app="portal")
        finally:
            await rt.engine.dispose()
        return key

    return asyncio.run(go())


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_portal_withdrawal_confirmed_in_the_browser(server: str, settings: Settings,
                                                    lang: str) -> None:
    from playwright.sync_api import Page, expect

    _ = chromium.words(lang)
    amount = {"en": "0.25", "ru": "0,25"}[lang]  # as the page writes numbers
    email = f"portal-{uuid.uuid4().hex[:8]}@example.com"
    digits = f"{secrets.randbelow(10**7):07d}"
    e164 = f"+7912{digits}"
    masked = f"+7 *** ***-{digits[3:5]}-{digits[5:]}"
    problems = chromium.ConsoleProblems(refusals=True)

    # The portal: an API key, the user, and later the withdrawal.
    api = httpx.Client(base_url=server, headers={
        "Authorization": f"Bearer {_app_key(settings)}"})
    r = api.post("/api/v1/users", json={"email": email, "external_id": f"c-{email}",
                                        "password": PASSWORD, "pin": PIN,
                                        "language": lang})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]

    def sms_code(page: Page) -> str:
        r = page.request.get(f"{server}/api/v1/dev/outbox", params={"to": e164})
        # The newest message with a code: a security notice may have come after it.
        bodies = [str(m["body"]) for m in r.json()["messages"]]
        match = next((m for m in (re.search(r"\b(\d{6})\b", b) for b in bodies) if m), None)
        assert match, bodies
        return match.group(1)

    def last_sms(page: Page) -> str:
        # The newest message with a code: a security notice (the switch's) is sent by
        # the notice sender in its own time, and may come after it.
        r = page.request.get(f"{server}/api/v1/dev/outbox", params={"to": e164})
        bodies = [str(m["body"]) for m in r.json()["messages"]]
        return next((b for b in bodies if re.search(r"\b\d{6}\b", b)), bodies[0])

    with chromium.launched() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900},
                                      locale=chromium.LOCALES[lang])
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
        page = chromium.new_page(context, problems)

        # The user enables SMS and switches it On for Withdrawal, through the pages.
        page.goto(f"{server}/login")
        assert_axe_clean(page, f"login ({lang})")
        chromium.log_in(page, email, lang=lang, then="**/settings/methods")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_axe_clean(page, f"methods, after the first login ({lang})")
        page.click("#method-sms a[href$='/sms/enable']")
        assert_axe_clean(page, f"SMS set-up: number and PIN ({lang})")
        page.get_by_label(_("Mobile phone number")).fill(e164)
        page.get_by_label(_("PIN"), exact=True).fill(PIN)
        page.get_by_role("button", name=_("Send"), exact=True).click()
        # The script checks the number first, then sends the form: wait for step 2.
        expect(page.get_by_label(_("Security code"), exact=True)).to_be_visible()
        assert_axe_clean(page, f"SMS set-up: the code ({lang})")
        page.get_by_label(_("Security code"), exact=True).fill(sms_code(page))
        page.get_by_role("checkbox", name=_("Withdrawal")).uncheck()  # switched on below
        page.get_by_role("button", name=_("Verify")).click()
        page.wait_for_url("**/settings/methods?done=enabled&method=sms")
        assert_axe_clean(page, f"methods, SMS enabled ({lang})")
        # The switch, by keyboard as a screen reader user would: its name, its state,
        # and Space to toggle it.
        switch = page.locator("#method-sms").get_by_role("switch", name=_("Withdrawal"))
        expect(switch).to_have_attribute("aria-checked", "false")
        switch.focus()
        page.keyboard.press(" ")
        page.wait_for_url("**/settings/methods/sms/switch?op=withdrawal&on=1")
        assert_axe_clean(page, f"switch SMS on for withdrawals ({lang})")
        page.get_by_role("button", name=_("Send code")).click()
        expect(page.get_by_role("status")).to_contain_text(
            _("We sent a code to %(to)s.", to=masked))
        assert_axe_clean(page, f"switch SMS on for withdrawals: code sent ({lang})")
        page.get_by_label(_("Security code"), exact=True).fill(sms_code(page))
        page.get_by_role("button", name=_("Verify")).click()
        page.wait_for_url("**/settings/methods?done=switched&method=sms")
        withdrawal = page.locator("#method-sms a.switch[href*='op=withdrawal']")
        expect(withdrawal).to_contain_text(_("On"))
        expect(withdrawal).to_have_attribute("role", "switch")
        expect(withdrawal).to_have_attribute("aria-checked", "true")
        expect(page.get_by_role("switch", name=_("Withdrawal"), checked=True)).to_have_count(1)
        assert_axe_clean(page, f"methods, SMS on for withdrawals ({lang})")
        page.get_by_role("button", name=_("Log out")).click()
        page.wait_for_url("**/login?bye=1")

        # The portal creates the withdrawal and sends the user to its page.
        r = api.post(f"/api/v1/users/{user_id}/operations", json={
            "type": "withdrawal",
            "details": {"amount": "0.25", "currency": "BTC", "destination": DESTINATION}})
        assert r.status_code == 201, r.text
        op_id = r.json()["id"]
        page.goto(f"{server}/operations/{op_id}")
        page.wait_for_url(f"**/login?next=/operations/{op_id}")
        expect(page.get_by_role("status")).to_contain_text(_("Log in to continue."))
        assert_axe_clean(page, f"login to continue to a withdrawal ({lang})")
        chromium.log_in(page, email, lang=lang)
        assert_axe_clean(page, f"second factor: SMS, before sending ({lang})")
        page.get_by_role("button", name=_("Send code")).click()
        page.get_by_label(_("Security code"), exact=True).fill(sms_code(page))
        page.locator("#remember_device").check()
        expect(page.get_by_label(_("Remember this device for %(num)d day",
                                             "Remember this device for %(num)d days", num=30))
               ).to_be_checked()
        assert_axe_clean(page, f"second factor: SMS code sent ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"second-factor-remember-{lang}.png"),
                        full_page=True)
        page.get_by_role("button", name=_("Log in")).click()
        page.wait_for_url(f"**/operations/{op_id}")

        # Step 1: the PIN, beside the details.
        details = page.locator(".op-details")
        expect(details.locator(".op-amount")).to_have_text(amount)
        expect(details.locator(".op-currency")).to_have_text("BTC")
        expect(details.locator("#op-destination")).to_have_text(DESTINATION)
        expect(details.locator(".op-short")).to_have_count(0)  # never shortened
        expect(page.get_by_role("heading", name=_("Enter your PIN"))).to_be_visible()
        assert_axe_clean(page, f"withdrawal: the PIN ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-pin-{lang}.png"),
                        full_page=True)
        page.get_by_label(_("PIN"), exact=True).fill(PIN)
        page.get_by_role("button", name=_("Continue")).click()

        # Step 2: an SMS code, bound to this withdrawal, typed beside its details.
        expect(page.get_by_role("heading", name=_("Enter the security code"))).to_be_visible()
        expect(page.get_by_text(_("Codes are sent to %(to)s.", to=masked))).to_be_visible()
        assert_axe_clean(page, f"withdrawal: the SMS code, before sending ({lang})")
        page.get_by_role("button", name=_("Send code")).click()
        expect(page.get_by_role("status")).to_contain_text(
            _("We sent a code to %(to)s.", to=masked))
        expect(page.locator("button[data-countdown]")).to_be_disabled()
        body = last_sms(page)
        assert f"{amount} BTC" in body and DESTINATION in body, body
        code_box = page.get_by_label(_("Security code"), exact=True).bounding_box()
        details_box = details.bounding_box()
        assert code_box and details_box
        assert code_box["x"] > details_box["x"] + details_box["width"] - 1  # beside it
        expect(page.locator(".op-recap")).to_have_text(_(
            "You confirm: %(amount)s %(currency)s to %(destination)s", amount=amount,
            currency="BTC", destination=DESTINATION))
        page.get_by_label(_("Security code"), exact=True).fill(sms_code(page))
        assert_axe_clean(page, f"withdrawal: the SMS code ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-code-{lang}.png"),
                        full_page=True)
        page.get_by_role("button", name=_("Confirm withdrawal")).click()

        # Confirmed: the method, the time and the receipt.
        page.wait_for_url(f"**/operations/{op_id}")
        expect(page.locator(".op-head .badge")).to_have_text(_("Confirmed"))
        expect(page.locator(".op-method")).to_have_text(_("SMS"))
        assert_axe_clean(page, f"withdrawal confirmed ({lang})")
        page.get_by_text(_("Signed receipt")).click()
        copy = page.locator("button[data-copy=receipt-token]")
        expect(copy).to_have_text(_("Copy"))
        expect(copy).to_be_visible()
        receipt = page.locator("#receipt-token").inner_text().strip()
        copy.click()
        expect(copy).to_have_text(_("Copied"))
        assert page.evaluate("navigator.clipboard.readText()") == receipt
        assert_axe_clean(page, f"withdrawal confirmed, receipt open ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-confirmed-{lang}.png"),
                        full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-confirmed-mobile-{lang}.png"),
                        full_page=True)
        page.set_viewport_size({"width": 1100, "height": 900})

        # The methods page lists this browser as remembered; New withdrawal is one click.
        page.goto(f"{server}/settings/methods#devices")
        devices = page.locator("#devices")
        expect(devices.locator(".device")).to_have_count(1)
        expect(devices).to_contain_text(_("This device"))
        assert_axe_clean(page, f"methods, a remembered device ({lang})")
        devices.screenshot(path=str(chromium.ARTIFACTS / f"remembered-devices-{lang}.png"))
        page.get_by_role("link", name=_("New withdrawal")).click()
        page.get_by_label(_("Amount")).fill("150")
        page.get_by_label(_("Currency")).fill("usd")
        page.get_by_label(_("Destination")).fill("DE89 3704 0044 0532 0130 00")
        assert_axe_clean(page, f"new withdrawal, filled in ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-new-{lang}.png"),
                        full_page=True)
        page.get_by_role("button", name=_("Continue")).click()
        expect(page.locator(".op-currency")).to_have_text("USD")
        page.set_viewport_size({"width": 390, "height": 844})
        assert_axe_clean(page, f"withdrawal: the PIN, on a phone ({lang})")
        page.screenshot(path=str(chromium.ARTIFACTS / f"operation-pin-mobile-{lang}.png"),
                        full_page=True)
        context.close()

    # The portal checks the receipt with the published keys, as docs/integration.md says.
    keys = KeySet.import_key_set(httpx.get(f"{server}/.well-known/jwks.json").json())
    claims = jwt.decode(receipt, keys, algorithms=["EdDSA"]).claims
    assert claims["sub"] == user_id and claims["method"] == "sms"
    assert claims["operation"]["id"] == op_id
    assert claims["operation"]["details"] == {"amount": "0.25", "currency": "BTC",
                                              "destination": DESTINATION}
    state = api.get(f"/api/v1/users/{user_id}/operations/{op_id}").json()
    assert state["status"] == "confirmed" and state["receipt"] == receipt
    api.close()
    assert problems == []
