"""What every browser test (tests/pages/test_browser_*.py) shares: Debian's Chromium and
its flags, the app served under uvicorn on a wiped database, the collector of console
errors, and signing up and logging in in the browser.

The ``server`` fixture reaches the test modules through tests/pages/conftest.py; a module
that serves other settings defines its own ``server`` with :func:`serve`.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from stepup.config import Settings
from stepup.domain.clock import SystemClock
from stepup.i18n import gettext, translations
from stepup.web.app import create_app
from tests.conftest import _wipe
from tests.pages.axe import assert_axe_clean
from tests.pages.helpers import PASSWORD, PIN
from tests.pages.latin import english_in
from tests.support.server import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

#: Every browser test module's marks (``pytestmark``), to which a module may add its own.
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) "
                       "is not installed: apt-get install chromium"),
]

#: A phone's browser context: ``browser.new_context(**PHONE_CONTEXT)``.
PHONE_CONTEXT: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                                 "has_touch": True, "device_scale_factor": 2}

#: The browser's locale for a page language: ``browser.new_context(locale=LOCALES[lang])``.
LOCALES = {"en": "en-GB", "ru": "ru-RU"}


def words(lang: str) -> Callable[..., str]:
    """``_ = words(lang)``: ``_("Verify")`` is what the pages say for "Verify" in
    ``lang``, from the catalogue they use, so that one journey's text selectors serve
    both languages; ``_("Codes are sent to %(to)s.", to=masked)`` fills the blanks, and
    ``_("%(num)d day", "%(num)d days", num=30)`` takes the plural form ``num`` asks for."""
    def _(message: str, plural: str | None = None, **values: object) -> str:
        if plural is None:
            text = gettext(lang, message)
        else:
            text = translations(lang).ngettext(message, plural, int(str(values["num"])))
        return text % values if values else text
    return _


# The words of the sign-up and login forms: filling them by their labels checks them too.
_WORDS = {
    "en": {"email": "E-mail", "password": "Password", "pin": "PIN",
           "sign_up": "Create account", "log_in": "Log in"},
    "ru": {"email": "Электронная почта", "password": "Пароль", "pin": "ПИН-код",
           "sign_up": "Зарегистрироваться", "log_in": "Войти"},
}


def serve(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The app under uvicorn in a thread, on the real clock (codes come from pyotp.now),
    on a wiped database: browser tests share one, and what an earlier one left (a
    receipt key, destinations sealed with that test's keys) would not open with this
    one's."""
    asyncio.run(_wipe(settings.effective_database_url))
    app = create_app(settings, clock=SystemClock())
    port = port or free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The address of the app served with the test settings (:func:`serve`)."""
    yield from serve(settings)


@contextmanager
def launched() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed at the end of the ``with`` block (and
    ARTIFACTS ready for screenshots)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(where: Browser | BrowserContext, problems: ConsoleProblems | None = None,
             **options: Any) -> Page:
    """A new page (``where`` a browser: in a context of its own, made with ``options``)
    that waits up to 15 seconds for anything, watched by ``problems``."""
    page = where.new_page(**options)
    page.set_default_timeout(15000)
    if problems is not None:
        problems.watch(page)
    return page


class ConsoleProblems(list[str]):
    """What went wrong in the pages it watches: console errors, Content-Security-Policy
    violations and uncaught exceptions. A test ends with ``assert problems == []``.

    ``refusals=True``: a refused form answers 4xx on purpose, and Chromium logs that
    answer as an error; it is not a problem (a CSP violation always is)."""

    def __init__(self, *, refusals: bool = False) -> None:
        super().__init__()
        self._refusals = refusals

    def watch(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))
        return page

    def _console(self, msg: ConsoleMessage) -> None:
        refusal = self._refusals and "status of 4" in msg.text
        if "Content Security Policy" in msg.text or (msg.type == "error" and not refusal):
            self.append(f"{msg.type}: {msg.text}")


#: The test server's issuer ("StepUp Test"), which the header and the app's entry show.
ISSUER_NAMES = frozenset({"Test"})


def assert_russian(page: Page, label: str, names: frozenset[str] = frozenset()) -> None:
    """The page is in Russian, axe finds nothing (at its width and the other one), and
    its main text has no English word but for the issuer's and ``names``."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    assert_axe_clean(page, label)
    english = english_in(page.locator("main").inner_html(), ISSUER_NAMES | names)
    assert not english, f"English in the Russian page «{label}» ({page.url}): {english}"


def email_verification_code(page: Page, server: str, email: str) -> str:
    """The code of the sign-up message (the one with the /email/verify/ link) in the
    development outbox, as the client reads it from their mailbox."""
    for _ in range(50):
        r = page.request.get(f"{server}/api/v1/dev/outbox", params={"to": email})
        for message in r.json()["messages"]:  # newest first
            body = str(message["body"])
            m = re.search(r"\b(\d{6})\b", body)
            if "/email/verify/" in body and m:
                return m.group(1)
        time.sleep(0.2)
    raise AssertionError("no verification code in the outbox")


def sign_up(page: Page, email: str, *, base: str | None = None, lang: str | None = None,
            submit: bool = True) -> None:
    """Sign up with ``email``, :data:`PASSWORD` and :data:`PIN`, the fields found by their
    labels in ``lang`` (English by default), and land on the methods page.

    ``base``: open the sign-up page there first (``?lang=`` with ``lang``); without it the
    page is on the form already, as the test checked it. ``submit=False``: leave the form
    filled in."""
    words = _WORDS[lang or "en"]
    if base is not None:
        page.goto(f"{base}/signup" + (f"?lang={lang}" if lang else ""))
    page.get_by_label(words["email"], exact=True).fill(email)
    page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    page.get_by_label(words["pin"], exact=True).fill(PIN)
    if submit:
        page.get_by_role("button", name=words["sign_up"]).click()
        page.wait_for_url("**/settings/methods")


def log_in(page: Page, email: str, *, lang: str | None = None, password: str = PASSWORD,
           then: str = "**/login/second-factor") -> None:
    """On the login page (the portal's or the console's) as it is: the e-mail and the
    password, by their labels in ``lang`` (English by default), then wait for ``then``."""
    words = _WORDS[lang or "en"]
    page.get_by_label(words["email"], exact=True).fill(email)
    page.get_by_label(words["password"], exact=True).fill(password)
    page.get_by_role("button", name=words["log_in"]).click()
    page.wait_for_url(then)
