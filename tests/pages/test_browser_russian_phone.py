"""Issue 16, "Done when": a client who reads only Russian, on a phone (390 × 844), in
Debian's Chromium (Playwright) under the real CSP — sign up → verify the e-mail with the
code of the sign-up message → enable the authenticator app for login and withdrawals at
its last step → the methods page says what protects login and what confirms a
withdrawal → log out, log in with the password and a code → a withdrawal confirmed with
the PIN and a code → the activity page. axe-core is clean at every step (at 390 px and
at a desktop's width), no console error or CSP violation, and no English word is left
in a page's main text. (The forgotten password and the PIN change are the journey of
test_browser_password_reset.py.)"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyotp
import pytest

from stepup.config import Settings
from tests.pages import browser_support as chromium
from tests.pages.helpers import PIN

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [*chromium.BROWSER, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from chromium.serve(settings.model_copy(update={"notification_poll_seconds": 0.2}))


def _russian(page: Page, label: str, names: frozenset[str] = frozenset()) -> None:
    """axe finds nothing, at 390 px and at 1280 px, and the main text is all Russian
    (but for ``names``)."""
    chromium.assert_russian(page, label, names)
    # Nothing wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), label


def _wait_for_the_next_step(used: int) -> None:
    """A time step of the app is accepted once: wait until ``used`` is the current one,
    so that the code of the step after it is new and within the window."""
    while int(time.time() // 30) < used:
        time.sleep(0.5)


def test_a_russian_client_on_a_phone_from_sign_up_to_a_withdrawal(server: str) -> None:
    from playwright.sync_api import expect

    email = f"ru-phone-{uuid.uuid4().hex[:8]}@example.com"
    masked = "r***@example.com"
    problems = chromium.ConsoleProblems(refusals=True)

    with chromium.launched() as browser:
        context = browser.new_context(locale="ru-RU", timezone_id="Europe/Moscow",
                                      **chromium.PHONE_CONTEXT)
        page = chromium.new_page(context, problems)

        # Sign up, in Russian from the first page on.
        page.goto(f"{server}/signup?lang=ru")
        expect(page.get_by_role("heading", level=1)).to_have_text("Регистрация")
        _russian(page, "sign-up")
        chromium.sign_up(page, email, lang="ru")

        # The methods page asks to verify the address and says that nothing confirms a
        # withdrawal yet: no protection claimed that the service does not apply.
        banner = page.locator("#verify-email-banner")
        expect(banner).to_contain_text("Подтвердите адрес электронной почты")
        expect(page.locator("#confirms-withdrawal")).to_contain_text("Пока ничем")
        expect(page.locator(".identities")).to_contain_text("Только пароль")
        _russian(page, "methods, after sign-up")

        # And it is so: a withdrawal now is refused, with what to do.
        page.get_by_role("link", name="Новый вывод средств").click()
        page.wait_for_url("**/operations/new")
        _russian(page, "new withdrawal")
        page.get_by_label("Сумма").fill("0,25")
        page.get_by_label("Валюта").fill("BTC")
        page.get_by_label("Куда").fill(DESTINATION)
        page.get_by_role("button", name="Продолжить").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "Подтвердить вывод средств пока нечем: подтвердите адрес электронной почты")
        _russian(page, "new withdrawal, refused before the e-mail is verified")
        page.get_by_role("link", name="Отмена").click()
        page.wait_for_url("**/settings/methods")

        # The code of the sign-up message verifies the address.
        banner.get_by_role("link", name="Ввести код").click()
        page.wait_for_url("**/settings/email")
        _russian(page, "verify the e-mail")
        code = chromium.email_verification_code(page, server, email)
        page.get_by_label("Код из письма").fill(code)
        page.get_by_role("button", name="Подтвердить", exact=True).click()
        page.wait_for_url("**/settings/methods?done=email_verified")
        expect(page.get_by_role("status").first).to_contain_text(
            "Ваш адрес электронной почты подтверждён.")
        expect(banner).to_have_count(0)
        expect(page.locator("#confirms-withdrawal")).to_contain_text(
            f"Код подтверждения на вашу электронную почту {masked}")
        _russian(page, "methods, e-mail verified")

        # The authenticator app: the PIN, then the QR code and key, then a code — and
        # "Использовать для: Вход, Вывод средств", confirmed by that same code.
        page.locator("#method-totp").get_by_role(
            "link", name="Включить приложение-аутентификатор").click()
        _russian(page, "TOTP set-up: the PIN")
        page.get_by_label("ПИН-код").fill(PIN)
        page.get_by_role("button", name="Подтвердить").click()
        expect(page.locator("figure.qr svg")).to_be_visible()
        _russian(page, "TOTP set-up: QR code and key")
        totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().replace(" ", ""))
        choice = page.get_by_role("group", name="Использовать для:")
        expect(choice.get_by_role("checkbox", name="Вход")).to_be_checked()
        expect(choice.get_by_role("checkbox", name="Вывод средств")).to_be_checked()
        enrolled = int(time.time() // 30)
        page.get_by_label("Код подтверждения", exact=True).fill(totp.at(enrolled * 30))
        page.get_by_role("button", name="Подтвердить").click()
        page.wait_for_url("**/settings/methods?done=enabled&method=totp")
        expect(page.locator(".alert-success")).to_have_text(
            "Приложение-аутентификатор включено. "
            "Теперь этот способ защищает вход и вывод средств.")
        # What the methods page says protects login and confirms a withdrawal.
        expect(page.locator("#method-totp .badge")).to_have_text("Включено")
        expect(page.locator("#method-totp").get_by_role("switch", checked=True)).to_have_count(2)
        facts = page.locator(".identities")
        expect(facts).to_contain_text("Защита операции «Вход»")
        expect(facts).not_to_contain_text("Только пароль")
        expect(page.locator("#confirms-withdrawal")).to_have_text(re.compile(
            r"^\s*Чем подтверждается операция «Вывод средств»\s*Приложение-аутентификатор\s*$"))
        _russian(page, "methods, the app protects login and withdrawals")

        # Log out; the password alone no longer opens the account.
        page.get_by_role("button", name="Выйти").click()
        page.wait_for_url("**/login?bye=1")
        _russian(page, "login, after logging out")
        chromium.log_in(page, email, lang="ru")
        expect(page.get_by_role("heading", level=1)).to_have_text("Введите код подтверждения")
        _russian(page, "second factor: the app")
        # A step after the one that enabled the app, and within a step of the clock's.
        login_step = max(enrolled + 1, int(time.time() // 30))
        page.get_by_label("Код подтверждения", exact=True).fill(totp.at(login_step * 30))
        page.get_by_role("button", name="Войти").click()
        page.wait_for_url("**/settings/methods")

        # A withdrawal: the details, the PIN, then a code from the app.
        page.get_by_role("link", name="Новый вывод средств").click()
        page.wait_for_url("**/operations/new")
        page.get_by_label("Сумма").fill("0,25")
        page.get_by_label("Валюта").fill("BTC")
        page.get_by_label("Куда").fill(DESTINATION)
        page.get_by_role("button", name="Продолжить").click()
        expect(page.get_by_role("heading", name="Введите ПИН-код")).to_be_visible()
        expect(page.locator(".op-amount")).to_have_text("0,25")
        expect(page.locator("#op-destination")).to_have_text(DESTINATION)
        _russian(page, "withdrawal: the PIN")
        page.get_by_label("ПИН-код", exact=True).fill(PIN)
        page.get_by_role("button", name="Продолжить").click()
        expect(page.get_by_role("heading", name="Введите код подтверждения")).to_be_visible()
        _russian(page, "withdrawal: the code")
        _wait_for_the_next_step(login_step)
        step = max(login_step + 1, int(time.time() // 30))
        page.get_by_label("Код подтверждения", exact=True).fill(totp.at(step * 30))
        page.get_by_role("button", name="Подтвердить вывод").click()
        expect(page.locator(".op-head .badge")).to_have_text("Подтверждено")
        expect(page.locator(".op-method")).to_have_text("Приложение-аутентификатор")
        _russian(page, "withdrawal confirmed")

        # The activity page tells it in Russian words, in Moscow time.
        page.goto(f"{server}/settings/methods")
        page.locator("#activity-link").click()
        page.wait_for_url("**/settings/activity")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Недавние события безопасности")
        events = page.locator("#activity > li.event")
        expect(events.first).to_contain_text("Вывод средств подтверждён")
        for what in ("Вход по паролю и коду подтверждения", "Способ аутентификации включён",
                     "Адрес электронной почты подтверждён"):
            expect(events.filter(has_text=what).first).to_be_visible()
        expect(page.locator("#activity-zone")).to_have_text(
            "Время указано в вашем часовом поясе: Москва (Europe/Moscow).")
        # The zone's own identifier is a name, like an address: not English to translate.
        _russian(page, "activity", frozenset({"Europe", "Moscow"}))
        context.close()

    assert not problems, problems


def test_a_russian_client_on_a_phone_verifies_the_email_by_its_link(server: str) -> None:
    """The sign-up message's other way: its link, opened on the phone's mail app's
    browser (not logged in), verifies the address on the page's button (a POST, so that
    a mail scanner fetching the link verifies nothing)."""
    from playwright.sync_api import expect

    _ = chromium.words("ru")
    email = f"ru-link-{uuid.uuid4().hex[:8]}@example.com"
    masked = "r***@example.com"
    problems = chromium.ConsoleProblems(refusals=True)  # the used link answers 4xx

    with chromium.launched() as browser:
        context = browser.new_context(locale="ru-RU", **chromium.PHONE_CONTEXT)
        page = chromium.new_page(context, problems)
        chromium.sign_up(page, email, base=server, lang="ru")
        expect(page.locator("#verify-email-banner")).to_be_visible()

        link = None
        for _attempt in range(50):
            r = page.request.get(f"{server}/api/v1/dev/outbox", params={"to": email})
            found = [re.search(r"/email/verify/[\w.-]+", str(m["body"]))
                     for m in r.json()["messages"]]
            link = next((f.group(0).rstrip(".") for f in found if f), None)
            if link:
                break
            time.sleep(0.2)
        assert link, "no verification link in the outbox"

        # The mail app's browser: no session; the page asks, the button verifies.
        mail = browser.new_context(locale="ru-RU", **chromium.PHONE_CONTEXT)
        opened = chromium.new_page(mail, problems)
        opened.goto(server + link)
        expect(opened.locator("#email-verified")).to_have_count(0)  # a GET verifies nothing
        _russian(opened, "the e-mail's link")
        opened.get_by_role("button", name=_("Verify my e-mail address")).click()
        expect(opened.locator("#email-verified")).to_have_text(
            _("Your e-mail address %(to)s is verified.", to=masked))
        _russian(opened, "the e-mail's link, verified")
        mail.close()

        # The account sees it: no banner, and the e-mail now confirms withdrawals.
        page.reload()
        expect(page.locator("#verify-email-banner")).to_have_count(0)
        expect(page.locator("#confirms-withdrawal")).to_contain_text(
            f"Код подтверждения на вашу электронную почту {masked}")
        _russian(page, "methods, the e-mail verified by its link")

        # The link serves once: opened again, it says so and offers no button.
        page.goto(server + link)
        expect(page.get_by_role("alert")).to_be_visible()
        expect(page.get_by_role("button", name=_("Verify my e-mail address"))).to_have_count(0)
        _russian(page, "the e-mail's link, used again")
        context.close()

    assert not problems, problems
