"""The language switcher on every page, logged in or not, and the order of precedence:
explicit choice (``?lang=``, the switcher) > account language > this browser's earlier
choice > Accept-Language > English. A logged-in user's choice is saved to the account by
a CSRF-checked POST, never by a link."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import User
from stepup.web.i18n import page_language
from tests.pages.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    check,
    enable_totp,
    form,
    get,
    log_in,
    log_out,
    redirected_to,
    sign_up,
    submit,
    totp_now,
)
from tests.pages.test_admin import create_staff, staff_log_in


def switcher(html: str) -> str:
    m = re.search(r'<span class="lang-switch" id="lang-switch".*?</span>\s*</(form|nav|div)>', html,
                  flags=re.S)
    assert m, "no language switcher"
    return m.group(0)


async def language_of(rt: Runtime, email: str = EMAIL) -> str:
    async with rt.db() as db:
        user = (await db.execute(select(User).where(User.email == email))).scalar_one()
        return user.language


def test_the_order_of_precedence() -> None:
    ru_first = "ru-RU,ru;q=0.9,en;q=0.5"
    assert page_language(explicit="en", account="ru", remembered="ru",
                         accept_language=ru_first) == "en"
    assert page_language(explicit=None, account="en", remembered="ru",
                         accept_language=ru_first) == "en"
    assert page_language(explicit="xx", account=None, remembered="ru",
                         accept_language="en") == "ru"
    assert page_language(explicit=None, account=None, remembered=None,
                         accept_language=ru_first) == "ru"
    assert page_language(explicit=None, account=None, remembered=None,
                         accept_language="de") == "en"


async def test_visitors_switch_with_links_that_keep_the_page(
        client: httpx.AsyncClient) -> None:
    html = await get(client, "/login?next=/settings/activity")
    links = switcher(html)
    assert 'href="/login?next=%2Fsettings%2Factivity&amp;lang=ru"' in links
    assert 'aria-current="true" class="lang-current">English<' in links
    ru = await get(client, "/login?next=%2Fsettings%2Factivity&lang=ru")
    assert '<html lang="ru">' in ru
    # Remembered by this browser: the next page without ?lang= is Russian too.
    assert '<html lang="ru">' in await get(client, "/signup")


async def test_a_logged_in_user_switches_on_every_page_and_it_is_saved(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    for url in ("/settings/methods", "/settings/activity", "/operations/new"):
        html = await get(client, url)
        links = switcher(html)
        assert 'name="language" value="ru" lang="ru"' in links, url
        assert form(html, "/settings/language").fields["next"] == url
    html = await get(client, "/settings/activity")
    fields = form(html, "/settings/language").fields
    r = await client.post("/settings/language", data={**fields, "language": "ru"})
    assert redirected_to(r, "/settings/activity") == "/settings/activity"
    assert await language_of(runtime) == "ru"
    page = await get(client, "/settings/activity")
    assert '<html lang="ru">' in page
    assert "Язык страниц и сообщений изменён" in page  # audited as account.updated
    # The account's language, on every device: a new browser logs in to Russian pages.
    await log_out(client)
    client.cookies.clear()
    r = await log_in(client)
    redirected_to(r, "/settings/methods")
    assert '<html lang="ru">' in await get(client, "/settings/methods")


async def test_an_explicit_choice_beats_the_account_but_a_link_saves_nothing(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)  # English
    html = await get(client, "/settings/methods?lang=ru")
    assert '<html lang="ru">' in html  # explicit, though the account says English
    assert await language_of(runtime) == "en"  # a GET changes no saved setting
    assert '<html lang="en">' in await get(client, "/settings/methods")
    # Accept-Language does not override the account either.
    html = await get(client, "/settings/methods", headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in html


async def test_the_language_chosen_before_logging_in_is_kept_and_saved(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)  # English
    await log_out(client)
    assert '<html lang="ru">' in await get(client, "/login?lang=ru")  # the switcher
    r = await log_in(client)  # the password suffices: no method protects login
    assert redirected_to(r, "/settings/methods") == "/settings/methods"
    assert '<html lang="ru">' in await get(client, "/settings/methods")
    assert await language_of(runtime) == "ru"
    # Saved as the switcher of a logged-in user saves it: audited.
    assert "Язык страниц и сообщений изменён" in await get(client, "/settings/activity")


async def test_the_language_chosen_is_saved_at_the_second_factor(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)  # English
    secret = await enable_totp(client, clock)
    await log_out(client)
    await get(client, "/login?lang=ru")
    redirected_to(await log_in(client), "/login/second-factor")
    assert await language_of(runtime) == "en"  # not yet: the login is not done
    html = await get(client, "/login/second-factor")
    assert '<html lang="ru">' in html
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods")
    assert '<html lang="ru">' in await get(client, "/settings/methods")
    assert await language_of(runtime) == "ru"


async def test_without_a_choice_the_account_keeps_its_language(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client, language="ru")
    await log_out(client)
    client.cookies.clear()  # another browser, that never chose, reading English
    english = {"Accept-Language": "en"}
    assert '<html lang="en">' in await get(client, "/login", headers=english)
    html = await get(client, "/login", headers=english)
    r = await submit(client, html, "/login", email=EMAIL, password=PASSWORD)
    redirected_to(r, "/settings/methods")
    assert '<html lang="ru">' in await get(client, "/settings/methods", headers=english)
    assert await language_of(runtime) == "ru"


async def test_the_language_picked_at_sign_up_beats_an_earlier_choice(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await get(client, "/login?lang=ru")  # this browser chose Russian once
    html = await get(client, "/signup")
    assert '<html lang="ru">' in html
    r = await submit(client, html, "/signup", email=EMAIL, password=PASSWORD, pin=PIN,
                     language="en")  # … and English on the sign-up form
    redirected_to(r, "/settings/methods")
    await log_out(client)
    redirected_to(await log_in(client), "/settings/methods")
    assert await language_of(runtime) == "en"
    assert '<html lang="en">' in await get(client, "/settings/methods")


async def test_the_language_form_is_checked(client: httpx.AsyncClient,
                                           runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods")
    fields = form(html, "/settings/language").fields
    # No CSRF token: refused, nothing saved.
    r = await client.post("/settings/language", data={"language": "ru", "next": "/"})
    check(r, 403)
    assert await language_of(runtime) == "en"
    # A language we do not have.
    check(await client.post("/settings/language", data={**fields, "language": "de"}), 400)
    # Never back to another site.
    r = await client.post("/settings/language",
                          data={**fields, "language": "ru", "next": "//evil.example/x"})
    assert redirected_to(r, "/") == "/settings/methods"
    assert await language_of(runtime) == "ru"
    # Logged out, the form is not there and the address sends to the login page.
    await log_out(client)
    html = await get(client, "/login")
    assert 'action="/settings/language"' not in html and "lang-switch" in html


async def test_the_console_has_the_switcher_when_logged_in(client: httpx.AsyncClient,
                                                          runtime: Runtime,
                                                          clock: FrozenClock) -> None:
    agent = await create_staff(runtime, "agent@example.com", "support")
    await staff_log_in(client, agent, clock)
    html = await get(client, "/admin")
    assert 'href="/admin?lang=ru"' in html
    ru = await get(client, "/admin?lang=ru")
    assert '<html lang="ru">' in ru
    assert '<html lang="ru">' in await get(client, "/admin")  # remembered by the browser
