"""The support console on a phone, in Debian's Chromium (Playwright): every console page
at 390 px wide scrolls only up and down (``scrollWidth`` never wider than the window),
and the number on file is shown when support asks for it.

A user with a verified phone, a long e-mail address and an open recovery request is
made over HTTP first (as the user's browser would); then a staff member logs in on a
phone-sized window and walks the console: login, second factor, search, the queue, the
account, the number on file, the recovery request. StepUp's own recovery form and the
cancel page are checked at the same width.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass

import httpx
import pyotp

from stepup.config import Settings
from stepup.domain.clock import SystemClock
from stepup.services import recovery, staff
from stepup.services.runtime import Actor, Runtime
from tests.pages import browser_support as chromium
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PIN, get, log_in, log_out, redirected_to, sign_up, submit
from tests.pages.test_oob import last_code

pytestmark = chromium.BROWSER

WIDTH = 390
STAFF_PASSWORD = "staff-correct-horse-42"


@dataclass
class Scene:
    staff_email: str
    staff_secret: str
    user_email: str
    user_id: str
    request_id: str
    cancel_link: str
    phone: str  # E.164
    # The cookies of another user's browser at the second factor, who has filed nothing.
    locked_out: list[dict[str, str]]


def _scene(settings: Settings, base: str) -> Scene:
    """A staff member, and a user with a verified phone whose login is locked out and
    who filed a recovery request from StepUp's pages."""
    tag = uuid.uuid4().hex[:8]
    user_email = f"a-rather-long-customer-address-{tag}@brokerage-clients.example.com"
    digits = f"{random.randrange(10**4):04d}"
    phone = f"+7912345{digits}"

    async def go() -> Scene:
        rt = Runtime.build(settings, SystemClock())
        try:
            member = await staff.create(rt, Actor(name="cli"), email=f"agent-{tag}@example.com",
                                        name="Alexandra Support-Agent", role="supervisor",
                                        password=STAFF_PASSWORD)
            async with httpx.AsyncClient(base_url=base) as user:
                await sign_up(user, user_email)
                html = await get(user, "/settings/methods/sms/enable")
                r = await submit(user, html, "/settings/methods/sms/enable",
                                 phone=f"+7 912 345 {digits}", pin=PIN)
                r = await submit(user, r.text, "/settings/methods/sms/confirm",
                                 code=await last_code(rt, phone))
                redirected_to(r, "/settings/methods?done=enabled&method=sms")
                await log_out(user)
                redirected_to(await log_in(user, user_email), "/login/second-factor")
                html = await get(user, "/login/recovery")
                r = await submit(user, html, "/login/recovery",
                                 description="I lost my phone on the train, and the backup "
                                             "codes were in the same bag.",
                                 channel="phone", phone="+44 7400 123456",
                                 best_time="weekdays after six in the evening")
                redirected_to(r, "/login/recovery?filed=1")
            async with httpx.AsyncClient(base_url=base) as other:
                await sign_up(other, f"other-{tag}@example.com")
                html = await get(other, "/settings/methods/sms/enable")
                r = await submit(other, html, "/settings/methods/sms/enable",
                                 phone=f"+7 912 346 {digits}", pin=PIN)
                r = await submit(other, r.text, "/settings/methods/sms/confirm",
                                 code=await last_code(rt, f"+7912346{digits}"))
                await log_out(other)
                redirected_to(await log_in(other, f"other-{tag}@example.com"),
                              "/login/second-factor")
                locked_out = [{"name": c.name, "value": c.value or "", "url": base}
                              for c in other.cookies.jar]
            [(row, _)] = [q for q in await recovery.queue(rt) if q[1] == user_email]
            return Scene(staff_email=member.staff.email, staff_secret=member.secret,
                         user_email=user_email, user_id=row.user_id, request_id=row.id,
                         cancel_link="/recovery/cancel/" + recovery.cancel_token(rt, row.id),
                         phone=phone, locked_out=locked_out)
        finally:
            await rt.engine.dispose()

    return asyncio.run(go())


def test_every_console_page_fits_a_390px_phone(server: str, settings: Settings) -> None:
    from playwright.sync_api import Page, expect

    scene = _scene(settings, server)
    problems = chromium.ConsoleProblems()
    seen: list[str] = []

    def fits(page: Page, name: str) -> None:
        """No sideways scrolling: the page is no wider than the phone; and axe finds
        nothing on it, at 390 px and at a desktop's width."""
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(chromium.ARTIFACTS / f"console-390-{name}.png"), full_page=True)
        assert width <= WIDTH, f"{name} ({page.url}) is {width} px wide at {WIDTH} px"
        assert_axe_clean(page, name)
        seen.append(name)

    with chromium.launched() as browser:
        context = browser.new_context(viewport={"width": WIDTH, "height": 844},
                                      device_scale_factor=2, is_mobile=True, has_touch=True,
                                      locale="en-GB")
        page = chromium.new_page(context, problems)

        # StepUp's own pages of the recovery path, as the user and a contact see them:
        # the request form styled like the portal's other forms.
        context.add_cookies(scene.locked_out)  # type: ignore[arg-type]
        page.goto(f"{server}/login/recovery")
        description = page.get_by_label("What happened?")
        expect(description).to_be_visible()
        assert description.evaluate("e => getComputedStyle(e).borderRadius") == "6px"
        legend = page.locator("fieldset.field legend")
        assert legend.evaluate("e => getComputedStyle(e).fontWeight") == "600"
        assert page.locator("fieldset.field").evaluate(
            "e => getComputedStyle(e).borderStyle") == "none"
        fits(page, "recovery-form")
        context.clear_cookies()
        page.goto(f"{server}{scene.cancel_link}")
        expect(page.get_by_role("button", name="Cancel the request")).to_be_visible()
        fits(page, "cancel-link")

        page.goto(f"{server}/admin/login?lang=ru")
        fits(page, "login-ru")
        page.goto(f"{server}/admin/login?lang=en")
        fits(page, "login")
        chromium.log_in(page, scene.staff_email, password=STAFF_PASSWORD,
                        then="**/admin/second-factor")
        fits(page, "second-factor")
        page.get_by_label("Security code").fill(pyotp.TOTP(scene.staff_secret).now())
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin")
        expect(page.get_by_role("heading", name="Recovery requests")).to_be_visible()
        fits(page, "home-queue")

        page.get_by_label("E-mail or account id").fill("brokerage-clients")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/admin?q=*")
        expect(page.get_by_role("link", name=scene.user_email)).to_be_visible()
        fits(page, "search")

        page.get_by_role("link", name=scene.user_email).click()
        page.wait_for_url(f"**/admin/users/{scene.user_id}")
        expect(page.get_by_role("button", name="Show number")).to_be_visible()
        assert scene.phone not in page.content()
        fits(page, "account")
        page.get_by_role("button", name="Show number").click()
        number = page.locator(".phone-number")
        expect(number).to_be_visible()
        assert number.get_attribute("href") == f"tel:{scene.phone}"
        # The look-up is in the audit log, under the staff member's name.
        expect(page.locator("table").last).to_contain_text("support.phone_viewed")
        expect(page.locator("table").last).to_contain_text("Alexandra Support-Agent")
        fits(page, "account-number-shown")

        page.goto(f"{server}/admin/recovery/{scene.request_id}")
        expect(page.get_by_role("heading", name="Identity checks", exact=True)).to_be_visible()
        fits(page, "recovery-request")
        page.get_by_role("button", name="Show number").click()
        expect(page.locator(".phone-number")).to_be_visible()
        fits(page, "recovery-request-number-shown")

        # The same pages in Russian (the console's language is this browser's choice).
        page.goto(f"{server}/admin?lang=ru")
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        fits(page, "home-queue-ru")
        page.goto(f"{server}/admin?q=brokerage-clients")
        fits(page, "search-ru")
        page.goto(f"{server}/admin/users/{scene.user_id}")
        fits(page, "account-ru")
        page.locator(".phone-form button[type=submit]").click()
        expect(page.locator(".phone-number")).to_be_visible()
        fits(page, "account-number-shown-ru")
        page.goto(f"{server}/admin/recovery/{scene.request_id}")
        fits(page, "recovery-request-ru")


    assert not problems, problems
    assert len(seen) == 16
