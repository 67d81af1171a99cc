"""Settings → Account security and "Forgot password?" as pages: the forms, their errors
on the right field, the session kept (and replaced) on a password change, and a reset
link that leaves the address at once and never logs in."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services import notifications
from stepup.services.runtime import Runtime
from stepup.store import codes, queries
from tests.pages.helpers import (
    EMAIL,
    PASSWORD,
    check,
    enable_totp,
    get,
    redirected_to,
    sign_up,
    submit,
    totp_now,
)
from tests.support.answer_first import answer_first_client
from tests.support.blocking import Held

NEW_PASSWORD = "quiet-meadow-41-otters"
NEW_PIN = "582046"


async def reset_link(runtime: Runtime) -> str:
    await notifications.deliver_due(runtime)
    async with runtime.db() as db:
        rows = await codes.outbox_for(db, EMAIL)
    m = re.search(r"http://testserver(/password/reset\?token=[A-Za-z0-9_-]+)", rows[0].body)
    assert m, rows[0].body
    return m.group(1)


async def test_the_security_page_is_linked_and_changes_the_password(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods")
    assert 'href="/settings/security"' in html
    html = await get(client, "/settings/security")
    assert "Change password" in html and "Change PIN" in html
    old_cookie = client.cookies.get("stepup_session")
    # A wrong current password: told under its field, nothing changes.
    r = await submit(client, html, "/settings/security/password",
                     current_password="not-my-password-1", new_password=NEW_PASSWORD)
    html = check(r, 400)
    assert 'id="current_password-error"' in html
    assert "The current password is not correct." in html
    # A weak new one: under the new password's field.
    r = await submit(client, html, "/settings/security/password",
                     current_password=PASSWORD, new_password="short")
    html = check(r, 422)
    assert 'id="new_password-error"' in html
    r = await submit(client, html, "/settings/security/password",
                     current_password=PASSWORD, new_password=NEW_PASSWORD)
    redirected_to(r, "/settings/security?done=password")
    # Still signed in, with a new session token.
    assert client.cookies.get("stepup_session") != old_cookie
    html = await get(client, "/settings/security?done=password")
    assert "Your password was changed." in html


async def test_changing_the_pin_with_the_authenticator(client: httpx.AsyncClient,
                                                       clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    html = await get(client, "/settings/security")
    r = await submit(client, html, "/settings/security/pin", password=PASSWORD,
                     new_pin=NEW_PIN, code="000000")
    html = check(r, 400)
    assert "The security code is not valid." in html
    r = await submit(client, html, "/settings/security/pin", password=PASSWORD,
                     new_pin="123456", code=totp_now(secret, clock))
    html = check(r, 422)
    assert 'id="new_pin-error"' in html
    r = await submit(client, html, "/settings/security/pin", password=PASSWORD,
                     new_pin=NEW_PIN, code=totp_now(secret, clock))
    redirected_to(r, "/settings/security?done=pin")
    assert "Your PIN was changed." in await get(client, "/settings/security?done=pin")


async def test_without_a_method_the_pin_code_goes_to_the_account_email(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/security")
    assert "the code is sent to your account e-mail" in html
    r = await submit(client, html, "/settings/security/pin/send")
    html = check(r)
    assert "We sent a code to" in html
    async with runtime.db() as db:
        [row, *_] = await codes.outbox_for(db, EMAIL)
    code = re.search(r"\b(\d{6})\b", row.body).group(1)  # type: ignore[union-attr]
    r = await submit(client, html, "/settings/security/pin", password=PASSWORD,
                     new_pin=NEW_PIN, code=code)
    redirected_to(r, "/settings/security?done=pin")


async def test_forgot_password_then_reset_logs_nobody_in(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    session = client.cookies.get("stepup_session")
    client.cookies.clear()  # another browser, where the password is forgotten
    html = await get(client, "/login")
    assert 'href="/password/forgot"' in html
    html = await get(client, "/password/forgot")
    r = await submit(client, html, "/password/forgot", email=EMAIL)
    redirected_to(r, "/password/forgot?sent=1")
    html = await get(client, "/password/forgot?sent=1")
    assert "If an account exists for this address" in html
    # An unknown address gets the very same answer.
    html = await get(client, "/password/forgot")
    r = await submit(client, html, "/password/forgot", email="nobody@example.com")
    redirected_to(r, "/password/forgot?sent=1")

    link = await reset_link(runtime)
    r = await client.get(link)
    redirected_to(r, "/password/reset")  # the token leaves the address at once
    html = await get(client, "/password/reset")
    r = await submit(client, html, "/password/reset", new_password="short")
    html = check(r, 422)
    assert 'id="new_password-error"' in html
    r = await submit(client, html, "/password/reset", new_password=NEW_PASSWORD)
    html = check(r)
    assert ("Your password was changed and every session was logged out. Log in with the "
            "new password: your security code is still asked.") in html
    assert "No security code is asked at login yet" not in html
    # The first browser's session is over, and the link is spent.
    assert session
    client.cookies.set("stepup_session", session)
    redirected_to(await client.get("/settings/methods"), "/login")
    r = await client.get(link)
    html = await get(client, "/password/reset", status=400)
    assert "Ask for a new link" in html
    # The next login asks for the second factor.
    html = await get(client, "/login")
    r = await submit(client, html, "/login", email=EMAIL, password=NEW_PASSWORD)
    redirected_to(r, "/login/second-factor")
    html = await get(client, "/login/second-factor")
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods")


async def test_the_forgot_page_answers_before_the_account_is_looked_up(
        client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's answer (and the page it leads to) arrive while the per-account part is
    held: their time cannot tell whether the address has an account."""
    await sign_up(client)

    async def link_sent() -> bool:
        await notifications.deliver_due(runtime)
        async with runtime.db() as db:
            return any("/password/reset?token=" in row.body
                       for row in await codes.outbox_for(db, EMAIL))

    held = Held(queries.get_user_by_email)
    monkeypatch.setattr(queries, "get_user_by_email", held)
    async with answer_first_client(runtime) as browser:
        try:
            html = await get(browser, "/password/forgot")
            r = await asyncio.wait_for(submit(browser, html, "/password/forgot",
                                              email=EMAIL), 5)
            redirected_to(r, "/password/forgot?sent=1")
            html = await asyncio.wait_for(get(browser, "/password/forgot?sent=1"), 5)
            assert "If an account exists for this address" in html
            await asyncio.wait_for(held.started.wait(), 5)
            assert not await link_sent()
        finally:
            held.release.set()
    assert await link_sent()


async def reset_with_a_new_password(client: httpx.AsyncClient, runtime: Runtime,
                                    password: str = NEW_PASSWORD, lang: str = "en") -> str:
    """Forgot password (in a browser of its own, reading ``lang``), the link, the new
    password: the page that answers it."""
    client.cookies.clear()
    html = await get(client, f"/password/forgot?lang={lang}")
    redirected_to(await submit(client, html, "/password/forgot", email=EMAIL),
                  "/password/forgot?sent=1")
    await notifications.deliver_due(runtime)
    async with runtime.db() as db:
        bodies = [row.body for row in await codes.outbox_for(db, EMAIL)]  # newest first
    links = [m.group(1) for body in bodies if (m := re.search(
        r"http://testserver(/password/reset\?token=[A-Za-z0-9_-]+)", body))]
    assert links, bodies
    redirected_to(await client.get(links[0]), "/password/reset")
    html = await get(client, "/password/reset")
    return check(await submit(client, html, "/password/reset", new_password=password))


async def test_a_reset_claims_no_security_code_when_none_protects_login(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    """An account with no method protecting login logs in with the password alone: the
    page after the reset must not say a security code is still asked."""
    await sign_up(client)
    html = await reset_with_a_new_password(client, runtime)
    assert ("Your password was changed and every session was logged out. Log in with the "
            "new password.") in html
    assert "security code is still asked" not in html
    assert "No security code is asked at login yet" in html
    # What the page says is what the login does: straight in.
    html = await get(client, "/login")
    r = await submit(client, html, "/login", email=EMAIL, password=NEW_PASSWORD)
    redirected_to(r, "/settings/methods")
    # The old "done" address claims nothing: it is the page of a link no longer usable.
    client.cookies.clear()
    html = await get(client, "/password/reset?done=1", status=400)
    assert "password was changed" not in html


async def test_a_reset_in_russian_says_what_the_login_asks(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client, language="ru")
    html = await reset_with_a_new_password(client, runtime, lang="ru")
    assert "Войдите с новым паролем." in html and "код подтверждения по-прежнему" not in html
    assert "Сейчас при входе код подтверждения не запрашивается" in html
    html = await get(client, "/login")
    r = await submit(client, html, "/login", email=EMAIL, password=NEW_PASSWORD)
    redirected_to(r, "/settings/methods")  # no method yet: the password alone
    await enable_totp(client, clock)  # the first method protects login
    html = await reset_with_a_new_password(client, runtime, "amber-lantern-93-foxes", "ru")
    assert "код подтверждения по-прежнему потребуется" in html
    assert "не запрашивается" not in html


async def test_the_pages_speak_russian(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    html = await get(client, "/settings/security")
    assert "Безопасность учётной записи" in html and "Сменить ПИН-код" in html
    html = await get(client, "/password/forgot")
    assert "Забыли пароль?" in html
