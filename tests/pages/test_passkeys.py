"""The portal's passkey forms without a browser: each page carries the options of a
challenge made for its own step, and a credential made from them (by the software
authenticator, as portal.js would send it) completes that step and no other."""

from __future__ import annotations

import html as htmllib
import json
import re
from typing import Any

import httpx

from tests.pages.helpers import (
    PIN,
    check,
    get,
    log_in,
    log_out,
    redirected_to,
    section,
    sign_up,
    submit,
)
from tests.support.passkey import SoftPasskey


def options_from(html: str, mode: str = "get") -> dict[str, Any]:
    m = re.search(rf'data-passkey="{mode}" data-options="([^"]*)"', html)
    assert m, "no passkey options on the page"
    return dict(json.loads(htmllib.unescape(m.group(1))))


async def enable_passkey(client: httpx.AsyncClient, passkey: SoftPasskey) -> None:
    html = await get(client, "/settings/methods/webauthn/enable")
    html = check(await submit(client, html, "/settings/methods/webauthn/enable", pin=PIN))
    created = passkey.create(options_from(html, "create"))
    r = await submit(client, html, "/settings/methods/webauthn/confirm", code=created)
    redirected_to(r, "/settings/methods?done=enabled&method=webauthn")


async def test_enable_log_in_and_disable_with_a_passkey(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    passkey = SoftPasskey()
    await enable_passkey(client, passkey)
    assert "Enabled" in section(await get(client, "/settings/methods"), "webauthn")
    await log_out(client)

    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor")
    assert "Use your passkey to finish logging in." in html
    assert "Passkeys need JavaScript" in html  # the <noscript> note
    options = options_from(html)
    # An answer made on another site is refused, and the page offers a fresh request.
    r = await submit(client, html, "/login/second-factor",
                     code=passkey.get(options, origin="https://phish.example"))
    html = check(r, 400)
    assert "another site" in html
    r = await submit(client, html, "/login/second-factor", code=passkey.get(options_from(html)))
    redirected_to(r, "/settings/methods")

    html = await get(client, "/settings/methods/webauthn/disable")
    assert "Click Disable, then confirm with your passkey." in html
    r = await submit(client, html, "/settings/methods/webauthn/disable",
                     code=passkey.get(options_from(html)))
    redirected_to(r, "/settings/methods?done=disabled&method=webauthn")


async def test_a_withdrawal_confirmed_with_a_passkey(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    passkey = SoftPasskey()
    await enable_passkey(client, passkey)
    html = await get(client, "/settings/methods/webauthn/switch?op=withdrawal&on=1")
    r = await submit(client, html, "/settings/methods/webauthn/switch",
                     code=passkey.get(options_from(html)))
    redirected_to(r, "/settings/methods?done=switched&method=webauthn")

    html = await get(client, "/operations/new")
    r = await submit(client, html, "/operations/new", amount="0.25", currency="BTC",
                     destination="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    op_url = redirected_to(r, "/operations/")
    html = await get(client, op_url)
    r = await submit(client, html, f"{op_url}/pin", pin=PIN)
    html = await get(client, redirected_to(r, op_url))
    assert "confirm with your passkey" in html
    r = await submit(client, html, f"{op_url}/confirm", code=passkey.get(options_from(html)))
    html = await get(client, redirected_to(r, op_url))
    assert "Confirmed" in html and "Passkeys" in html


async def test_the_russian_second_factor_page_for_a_passkey(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    await enable_passkey(client, SoftPasskey())
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor?lang=ru")
    assert "Чтобы завершить вход, воспользуйтесь ключом доступа." in html
    assert "Войти с ключом доступа" in html


async def test_a_second_passkey_is_added_and_each_removed(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    first, second = SoftPasskey(), SoftPasskey()
    await enable_passkey(client, first)
    html = await get(client, "/settings/methods")
    assert 'href="/settings/methods/webauthn/add"' in section(html, "webauthn")

    html = await get(client, "/settings/methods/webauthn/add")
    r = await submit(client, html, "/settings/methods/webauthn/add", pin="000000")
    assert "The PIN is not correct" in check(r, 400)
    html = check(await submit(client, html, "/settings/methods/webauthn/add", pin=PIN))
    r = await submit(client, html, "/settings/methods/webauthn/add/confirm",
                     code=second.create(options_from(html, "create")))
    redirected_to(r, "/settings/methods?done=passkey_added&method=webauthn")
    html = await get(client, "/settings/methods?done=passkey_added&method=webauthn")
    assert "The passkey was added." in html
    listed = section(html, "webauthn")
    assert "Passkey 1" in listed and "Passkey 2" in listed
    first_remove = re.search(r'href="(/settings/methods/webauthn/passkeys/[^"]+/remove)"',
                             listed)
    assert first_remove

    # Remove Passkey 1 with an answer from Passkey 2.
    html = await get(client, first_remove.group(1))
    assert "Remove Passkey 1" in html
    r = await submit(client, html, first_remove.group(1), code=second.get(options_from(html)))
    redirected_to(r, "/settings/methods?done=passkey_removed&method=webauthn")
    listed = section(await get(client, "/settings/methods"), "webauthn")
    assert "Passkey 1" not in listed and "Passkey 2" in listed

    # The last one: the page says it disables passkeys, and it does.
    last = re.search(r'href="(/settings/methods/webauthn/passkeys/[^"]+/remove)"', listed)
    assert last
    html = await get(client, last.group(1))
    assert "This is your last passkey" in html
    r = await submit(client, html, last.group(1), code=second.get(options_from(html)))
    redirected_to(r, "/settings/methods?done=disabled&method=webauthn")
    assert "Disabled" in section(await get(client, "/settings/methods"), "webauthn")


async def test_a_passkey_is_named_when_added_and_renamed(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    await enable_passkey(client, SoftPasskey())
    html = await get(client, "/settings/methods/webauthn/add")
    html = check(await submit(client, html, "/settings/methods/webauthn/add", pin=PIN))
    assert 'name="name"' in html and "Name (optional)" in html
    r = await submit(client, html, "/settings/methods/webauthn/add/confirm",
                     code=SoftPasskey().create(options_from(html, "create")), name="Phone")
    redirected_to(r, "/settings/methods?done=passkey_added")
    listed = section(await get(client, "/settings/methods"), "webauthn")
    assert "Passkey 1" in listed and "Phone" in listed
    rename = re.search(r'href="(/settings/methods/webauthn/passkeys/[^"]+/rename)"', listed)
    assert rename
    html = await get(client, rename.group(1))
    assert 'value="Passkey 1"' in html
    r = await submit(client, html, rename.group(1), name="   ")
    assert "1 to 60 printable characters" in check(r, 422)
    r = await submit(client, html, rename.group(1), name="Work laptop")
    redirected_to(r, "/settings/methods?done=passkey_renamed&method=webauthn")
    html = await get(client, "/settings/methods?done=passkey_renamed&method=webauthn")
    assert "The passkey was renamed." in html and "Work laptop" in section(html, "webauthn")
