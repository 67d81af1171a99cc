"""The portal in Russian: every page state a client meets, read as a Russian reader does.

Each page is driven with the test client in Russian (the account's language, or
``?lang=ru`` before login) and its visible text must hold no English word: only the names
of ``tests/pages/latin.py`` (StepUp, SMS, WhatsApp, Telegram, authenticator apps…),
addresses, URLs and codes may be in Latin letters.
"""

from __future__ import annotations

import re

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.pages.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    check,
    codes_from,
    enable_totp,
    get,
    log_in,
    log_out,
    redirected_to,
    secret_from,
    section,
    sign_up,
    submit,
    totp_now,
)
from tests.pages.latin import english_in
from tests.pages.test_oob import E164, PHONE, last_code
from tests.pages.test_passkeys import enable_passkey
from tests.support.passkey import SoftPasskey

# The issuer of the test settings ("StepUp Test") and the test client's browser
# ("python-httpx", on the activity page): names, shown as they are.
ISSUER = frozenset({"Test", "python-httpx"})


class Reader:
    """Collects the English words of every page it reads, to tell them all at once."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def read(self, where: str, html: str) -> str:
        assert '<html lang="ru">' in html, where
        words = english_in(html, ISSUER)
        if words:
            self.found[where] = words
        return html

    async def get(self, client: httpx.AsyncClient, url: str, status: int = 200) -> str:
        return self.read(url, await get(client, url, status))

    def post(self, where: str, r: httpx.Response, status: int = 200) -> str:
        if status >= 400:  # a refusal: whichever 4xx status, the page tells it
            assert 400 <= r.status_code < 500, (where, r.status_code)
            status = r.status_code
        return self.read(where, check(r, status))

    def assert_russian(self) -> None:
        assert not self.found, "English on Russian pages:\n" + "\n".join(
            f"  {where}: {sorted(set(words))}" for where, words in self.found.items())


@pytest.fixture
def reader() -> Reader:
    return Reader()


async def test_pages_before_login_are_russian(client: httpx.AsyncClient,
                                              reader: Reader) -> None:
    html = await reader.get(client, "/signup?lang=ru")
    reader.post("signup: an easy PIN", await submit(
        client, html, "/signup", email="new@example.com", password=PASSWORD, pin="123456",
        language="ru"), 422)
    page = reader.post("signup: a short password", await submit(
        client, html, "/signup", email="new@example.com", password="short", pin=PIN,
        language="ru"), 422)
    assert "Пароль слишком короткий" in page  # the reason, not «Запрос неверен»
    reader.post("signup: a bad address", await submit(
        client, html, "/signup", email="nope", password=PASSWORD, pin=PIN,
        language="ru"), 422)
    html = await reader.get(client, "/login")
    reader.post("login: a wrong password", await submit(
        client, html, "/login", email=EMAIL, password="wrong-password-1"), 401)
    # A form that did not come from this page: the refusal page.
    reader.read("login: no CSRF token", check(await client.post(
        "/login", data={"email": EMAIL, "password": PASSWORD}), 403))
    reader.assert_russian()


async def test_methods_set_up_and_switched_in_russian(client: httpx.AsyncClient,
                                                      runtime: Runtime, clock: FrozenClock,
                                                      reader: Reader) -> None:
    await sign_up(client, language="ru")
    await reader.get(client, "/settings/methods")
    # The authenticator app: the set-up, a wrong code, the notice.
    html = await reader.get(client, "/settings/methods/totp/enable")
    html = reader.post("totp set-up", await submit(
        client, html, "/settings/methods/totp/enable", pin=PIN))
    secret = secret_from(html)
    reader.post("totp: a wrong code", await submit(
        client, html, "/settings/methods/totp/confirm", code="000000"), 400)
    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret, clock))
    await reader.get(client, redirected_to(r, "/settings/methods?done=enabled"))
    clock.advance(30)
    # SMS: the two steps, the notice.
    html = await reader.get(client, "/settings/methods/sms/enable")
    html = reader.post("sms: code sent", await submit(
        client, html, "/settings/methods/sms/enable", phone=PHONE, pin=PIN))
    r = await submit(client, html, "/settings/methods/sms/confirm",
                     code=await last_code(runtime, E164))
    await reader.get(client, redirected_to(r, "/settings/methods?done=enabled"))
    # E-mail, backup codes, passkeys: their set-up pages.
    html = await reader.get(client, "/settings/methods/email/enable")
    reader.post("email: code sent", await submit(
        client, html, "/settings/methods/email/enable", pin=PIN))
    html = await reader.get(client, "/settings/methods/backup_codes/enable")
    html = reader.post("backup codes", await submit(
        client, html, "/settings/methods/backup_codes/enable", pin=PIN))
    codes = codes_from(html)
    await reader.get(client, "/settings/methods")
    html = await reader.get(client, "/settings/methods/backup_codes/regenerate")
    reader.post("regenerate: a wrong code", await submit(
        client, html, "/settings/methods/backup_codes/regenerate", code="nope"), 400)
    await reader.get(client, "/settings/methods/webauthn/enable")
    # Switches: on and off for withdrawals, with the code of that method.
    html = await reader.get(client, "/settings/methods/totp/switch?op=withdrawal&on=1")
    r = await submit(client, html, "/settings/methods/totp/switch",
                     code=totp_now(secret, clock))
    await reader.get(client, redirected_to(r, "/settings/methods?done=switched"))
    clock.advance(30)
    await reader.get(client, "/settings/methods/sms/switch?op=login&on=0")
    # Disable SMS with a code sent by the Send button.
    clock.advance(61)
    html = await reader.get(client, "/settings/methods/sms/disable")
    html = reader.post("sms: disable code sent", await submit(
        client, html, "/settings/methods/sms/send-code"))
    r = await submit(client, html, "/settings/methods/sms/disable",
                     code=await last_code(runtime, E164))
    await reader.get(client, redirected_to(r, "/settings/methods?done=disabled"))
    await reader.get(client, "/settings/methods/totp/disable")
    await reader.get(client, "/settings/activity")
    # Log in again: the second factor, a backup code, the recovery form.
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await reader.get(client, "/login/second-factor?lang=ru")
    reader.post("second factor: a wrong code", await submit(
        client, html, "/login/second-factor", code="000000"), 400)
    await reader.get(client, "/login/second-factor?method=backup_codes")
    html = await reader.get(client, "/login/recovery")
    reader.post("recovery: too short", await submit(
        client, html, "/login/recovery", description="помогите", channel="email"), 422)
    html = await reader.get(client, "/login/second-factor?method=backup_codes")
    r = await submit(client, html, "/login/second-factor", code=codes[0])
    await reader.get(client, redirected_to(r, "/settings/methods"))
    reader.assert_russian()


async def test_a_withdrawal_in_russian(client: httpx.AsyncClient, clock: FrozenClock,
                                       reader: Reader) -> None:
    await sign_up(client, language="ru")
    secret = await enable_totp(client, clock)
    html = await reader.get(client, "/settings/methods/totp/switch?op=withdrawal&on=1")
    r = await submit(client, html, "/settings/methods/totp/switch",
                     code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods?done=switched")
    clock.advance(30)
    html = await reader.get(client, "/operations/new")
    reader.post("withdrawal: no amount", await submit(
        client, html, "/operations/new", amount="", currency="BTC", destination="x"), 422)
    reader.post("withdrawal: too many decimals", await submit(
        client, html, "/operations/new", amount="1.123", currency="EUR",
        destination="x"), 422)
    r = await submit(client, html, "/operations/new", amount="1234.5", currency="EUR",
                     destination="DE89370400440532013000")
    url = redirected_to(r, "/operations/")
    html = await reader.get(client, url)
    amount = html.replace("\xa0", " ").replace("\u202f", " ")
    reader.post("withdrawal: a wrong PIN", await submit(
        client, html, f"{url}/pin", pin="000000"), 400)
    r = await submit(client, html, f"{url}/pin", pin=PIN)
    html = await reader.get(client, redirected_to(r, url))
    reader.post("withdrawal: a wrong code", await submit(
        client, html, f"{url}/confirm", code="000000"), 400)
    r = await submit(client, html, f"{url}/confirm", code=totp_now(secret, clock))
    await reader.get(client, redirected_to(r, url))
    await reader.get(client, "/operations/nonesuch", 404)
    reader.assert_russian()
    assert "1 234,50" in amount  # the amount as Russian writes it


async def test_passkeys_in_russian(client: httpx.AsyncClient, reader: Reader) -> None:
    """A passkey the user did not name is named in their language: «Ключ доступа 1»."""
    await sign_up(client, language="ru")
    await enable_passkey(client, SoftPasskey())
    html = await reader.get(client, "/settings/methods")
    assert '<span class="passkey-name">Ключ доступа 1</span>' in section(html, "webauthn")
    assert "Passkey 1" not in html
    passkey_id = re.search(r"/passkeys/(\w+)/rename", html)
    assert passkey_id is not None
    await reader.get(client, f"/settings/methods/webauthn/passkeys/{passkey_id.group(1)}/rename")
    await reader.get(client, f"/settings/methods/webauthn/passkeys/{passkey_id.group(1)}/remove")
    await reader.get(client, "/settings/methods/webauthn/add")
    await reader.get(client, "/settings/methods/webauthn/disable")
    reader.assert_russian()


async def test_a_recovery_request_in_russian(client: httpx.AsyncClient, clock: FrozenClock,
                                             reader: Reader) -> None:
    await sign_up(client, language="ru")
    await enable_totp(client, clock)
    await reader.get(client, "/settings/methods/whatsapp/enable")
    await reader.get(client, "/settings/methods/telegram/enable")
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    await reader.get(client, "/login/second-factor?lang=ru")
    html = await reader.get(client, "/login/recovery")
    reader.post("recovery: no phone", await submit(
        client, html, "/login/recovery", description="Потерял телефон целиком.",
        channel="phone", phone=""), 422)
    r = await submit(client, html, "/login/recovery", description="Потерял телефон целиком.",
                     channel="email")
    html = await reader.get(client, redirected_to(r, "/login/recovery?filed=1"))
    cancel = html.split('href="/recovery/cancel/')[1].split('"')[0]
    html = await reader.get(client, f"/recovery/cancel/{cancel}")
    reader.post("recovery: cancelled", await submit(client, html, f"/recovery/cancel/{cancel}"))
    await reader.get(client, f"/recovery/cancel/{cancel}")
    await reader.get(client, "/login/recovery")
    reader.assert_russian()
