"""A set-up that forgives a typo (issue #16, item 3): a wrong authenticator code shows the
same QR code and key again — read from the pending enrollment's sealed seed, for the
holder of the set-up page's ticket, never taken from the browser — while an enabled
method, or another user, never sees the key. The key is grouped in unbreakable fours,
an "Open in authenticator app" link carries the otpauth:// URI, and the apps are listed
by phone system (seed 003)."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

from stepup.domain.clock import FrozenClock
from stepup.methods.totp import setup_ticket
from stepup.services.runtime import Runtime
from tests.pages.helpers import (
    PIN,
    check,
    form,
    get,
    redirected_to,
    secret_from,
    sign_up,
    submit,
    totp_now,
)
from tests.support import instances

ENABLE = "/settings/methods/totp/enable"
CONFIRM = "/settings/methods/totp/confirm"
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")


def qr_of(page: str) -> str:
    m = re.search(r'<figure class="qr"[^>]*>(.*?)</figure>', page, re.S)
    assert m, "no QR code on the page"
    return m.group(1)


def otpauth_of(page: str) -> str:
    m = re.search(r'<a class="button button-primary" href="(otpauth://[^"]+)"', page)
    assert m, "no Open in authenticator app link"
    return htmllib.unescape(m.group(1))


def no_key_on(page: str, secret: str) -> None:
    assert "<svg" not in page and 'id="totp-secret"' not in page
    assert secret not in page.replace(" ", "") and "otpauth://" not in page
    assert secret.lower() not in page.lower()


async def start(client: httpx.AsyncClient) -> str:
    html = await get(client, ENABLE)
    return check(await submit(client, html, ENABLE, pin=PIN))


async def test_a_wrong_code_shows_the_same_qr_code_and_key_again(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    html = await start(client)
    secret, qr = secret_from(html), qr_of(html)
    ticket = form(html, CONFIRM).fields["setup"]
    assert ticket == setup_ticket(secret) and secret not in ticket

    page = check(await submit(client, html, CONFIRM, code="123456"), 400)
    assert "not valid" in page
    assert secret_from(page) == secret and qr_of(page) == qr  # nothing to scan again
    assert "Start again with a new QR code" not in page
    # Twice wrong (a drifted clock this time), still the same set-up.
    page = check(await submit(client, page, CONFIRM,
                              code=totp_now(secret, clock, offset_steps=10)), 400)
    assert "alert-drift" in page and secret_from(page) == secret and qr_of(page) == qr
    r = await submit(client, page, CONFIRM, code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods?done=enabled&method=totp")


async def test_the_key_in_groups_of_four_and_the_otpauth_link(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await start(client)
    secret = secret_from(html)
    groups = re.findall(r'<span class="secret-group">([A-Z2-7]+)</span>', html)
    assert "".join(groups) == secret and all(len(g) == 4 for g in groups)
    m = re.search(r'id="totp-secret"[^>]*>(.*?)</code>', html, re.S)
    assert m and "</span> <span" in m.group(1)  # a space between groups: wraps only there
    uri = urlparse(otpauth_of(html))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [secret]
    assert pyotp.parse_uri(otpauth_of(html)).secret == secret
    assert "Open in authenticator app" in html


async def test_without_the_ticket_the_key_is_not_shown_again(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await start(client)
    secret = secret_from(html)
    for forged in ("", "x" * 43, setup_ticket("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")):
        page = check(await submit(client, html, CONFIRM, code="123456", setup=forged), 400)
        no_key_on(page, secret)
        assert "Start again with a new QR code" in page


async def test_an_enabled_method_never_shows_its_key_again(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    html = await start(client)
    secret = secret_from(html)
    redirected_to(await submit(client, html, CONFIRM, code=totp_now(secret, clock)),
                  "/settings/methods?done=enabled")
    clock.advance(30)
    for code in ("123456", totp_now(secret, clock)):
        r = await submit(client, html, CONFIRM, code=code)  # the old page, its ticket
        assert r.status_code != 200
        no_key_on(r.text, secret)
    no_key_on(await get(client, "/settings/methods"), secret)


async def test_another_user_never_sees_the_key(runtime: Runtime,
                                               client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await start(client)
    secret = secret_from(html)
    ticket = form(html, CONFIRM).fields["setup"]
    async with instances.http_client(runtime) as other:
        await sign_up(other, email="mallory@example.com")
        # No enrollment of their own: the ticket of another's set-up shows nothing.
        mine = await start(other)
        r = await submit(other, mine, CONFIRM, code="123456", setup=ticket)
        page = check(r, 400)
        no_key_on(page, secret)
        assert secret_from(mine) != secret


async def test_apps_are_listed_for_the_phone_the_page_is_read_on(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await start(client)  # a computer: both lists side by side
    assert "<h3>Android</h3>" in html and "<h3>iOS</h3>" in html
    assert "Apps for other phones" not in html
    assert 'href="#clock-sync"' in html and "Google Authenticator" in html
    client.headers["user-agent"] = ANDROID
    html = await start(client)
    first = html.index("<h3>Android</h3>")
    folded = html.index("Apps for other phones")
    assert first < folded < html.index("<h3>iOS</h3>")  # iOS folded away under <details>


async def test_the_new_texts_are_russian(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    client.headers["user-agent"] = ANDROID
    html = await start(client)
    for russian in ("Открыть в приложении-аутентификаторе", "Приложения для других телефонов",
                    "Важно:", "проверьте настройки времени"):
        assert russian in html, russian
    for english in ("Open in authenticator app", "Apps for other phones", "Important:"):
        assert english not in html, english
    page = check(await submit(client, html, CONFIRM, code="123456"), 400)
    assert "Открыть в приложении-аутентификаторе" in page and "<svg" in page
