"""Portal pages: what they show, CSRF on every form, languages, and the CSP rules."""

from __future__ import annotations

import re

import httpx
import pytest

from stepup.config import Settings
from stepup.services.runtime import Runtime
from stepup.web.app import create_app
from tests.pages.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    check,
    form,
    get,
    log_in,
    redirected_to,
    section,
    sign_up,
    submit,
)

ORDER = ["totp", "sms", "email", "whatsapp", "backup_codes", "webauthn"]


async def test_root_goes_to_login_then_to_methods(client: httpx.AsyncClient) -> None:
    redirected_to(await client.get("/"), "/login")
    redirected_to(await client.get("/settings/methods"), "/login")
    await sign_up(client)
    redirected_to(await client.get("/"), "/settings/methods")
    redirected_to(await client.get("/login"), "/settings/methods")


async def test_methods_page_lists_the_six_sections(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods")
    assert "Settings → Authentication methods" in html
    positions = [html.index(f'id="method-{t}"') for t in ORDER]
    assert positions == sorted(positions)
    titles = [re.search(r"<h2[^>]*>([^<]+)</h2>", section(html, t)).group(1)  # type: ignore[union-attr]
              for t in ORDER]
    assert titles == ["Authenticator app", "SMS", "E-mail", "WhatsApp", "Backup codes",
                      "Passkeys"]
    for t in ORDER:
        s = section(html, t)
        assert "Disabled" in s and "Not yet available" not in s
        assert f'href="/settings/methods/{t}/enable"' in s and ">Enable<" in s
        assert s.count('class="switch-state" aria-hidden="true">Off<') == 2
        # Each switch one control: role switch, its state in aria-checked, its name the
        # operation; the Enable button named after its method (five cards, five names).
        assert s.count('role="switch" aria-checked="false"') == 2
        assert f'aria-labelledby="sw-{t}-login"' in s and f'id="sw-{t}-login"' in s
        assert ">Login<" in s and ">Withdrawal<" in s
    names = re.findall(r'aria-label="(Enable [^"]+)">Enable<', html)
    assert len(names) >= len(ORDER) and len(set(names)) == len(names)
    assert "Enable SMS codes" in names
    # Security identities: e-mail, phone, grade, count, what protects login.
    ident = html[html.index("Security identities"):html.index('id="method-totp"')]
    assert EMAIL in ident and "Not verified" in ident and "Grade 0" in ident
    assert "Methods enabled" in ident and "Password only" in ident


async def test_sign_up_errors_are_shown_next_to_the_form(client: httpx.AsyncClient) -> None:
    html = await get(client, "/signup")
    r = await submit(client, html, "/signup", email="new@example.com", password=PASSWORD,
                     pin="123456", language="en")
    html = check(r, 422)
    assert "too easy to guess" in html
    assert 'id="pin-error"' in html and 'value="new@example.com"' in html
    r = await submit(client, html, "/signup", email="not-an-address", password=PASSWORD,
                     pin=PIN, language="en")
    assert 'id="email-error"' in check(r, 422)
    await sign_up(client, "taken@example.com")
    client.cookies.clear()
    html = await get(client, "/signup")
    r = await submit(client, html, "/signup", email="taken@example.com", password=PASSWORD,
                     pin=PIN, language="en")
    assert "already exists" in check(r, 409)


async def test_wrong_password_is_a_message_not_a_500(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    client.cookies.clear()
    html = await get(client, "/login")
    r = await submit(client, html, "/login", email=EMAIL, password="wrong-password-here")
    html = check(r, 400)
    assert "not correct" in html and f'value="{EMAIL}"' in html


async def test_pre_login_form_without_csrf_is_refused(client: httpx.AsyncClient,
                                                      runtime: Runtime) -> None:
    data = {"email": "x@example.com", "password": PASSWORD, "pin": PIN, "language": "en"}
    r = await client.post("/signup", data=data)
    assert "Request refused" in check(r, 403)
    await get(client, "/signup")  # now there is a pre-session cookie
    r = await client.post("/signup", data={**data, "csrf_token": "0" * 64})
    check(r, 403)
    # A token made for another visitor's pre-session does not fit this one either.
    other = runtime.hasher.mac("csrf", "pre:someone-else")
    check(await client.post("/signup", data={**data, "csrf_token": other}), 403)
    r = await client.post("/login", data={"email": "x@example.com", "password": PASSWORD})
    check(r, 403)
    # Nothing was created: the address is still free.
    r = await client.post("/api/v1/accounts", json={"email": "x@example.com",
                                                    "password": PASSWORD, "pin": PIN})
    assert r.status_code == 201


async def test_logged_in_forms_without_csrf_are_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/totp/enable")
    token = form(html, "/settings/methods/totp/enable").fields["csrf_token"]
    for bad in (None, "", token[:-1] + ("0" if token[-1] != "0" else "1")):
        data = {"pin": PIN} | ({"csrf_token": bad} if bad is not None else {})
        check(await client.post("/settings/methods/totp/enable", data=data), 403)
    # Nothing changed: no setup was started.
    html = await get(client, "/settings/methods")
    assert "not finished" not in section(html, "totp")
    # A pre-session token is not a session token.
    check(await client.post("/logout", data={}), 403)
    check(await client.post("/settings/methods/backup_codes/enable",
                            data={"pin": PIN, "csrf_token": "x"}), 403)
    html = await get(client, "/settings/methods")  # still logged in
    assert "Disabled" in section(html, "backup_codes")


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods")
    session = client.cookies.get("stepup_session")
    r = await submit(client, html, "/logout")
    redirected_to(r, "/login")
    redirected_to(await client.get("/settings/methods"), "/login")
    # The old session token is dead on the server, not only forgotten by the browser.
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {session}"})
    assert r.status_code == 401


async def test_cookies_are_http_only(client: httpx.AsyncClient) -> None:
    html = await get(client, "/signup")
    r = await submit(client, html, "/signup", email=EMAIL, password=PASSWORD, pin=PIN,
                     language="en")
    cookie = r.headers["set-cookie"].lower()
    assert "stepup_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    r = await client.get("/signup")  # logged in: goes on to the methods page
    assert r.status_code == 303


async def test_russian_pages(client: httpx.AsyncClient) -> None:
    html = await get(client, "/login?lang=ru")
    assert '<html lang="ru">' in html and "Войти" in html and "Пароль" in html
    html = await get(client, "/signup")  # the choice is remembered
    assert "Регистрация" in html
    client.cookies.clear()
    html = await get(client, "/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Войти" in html
    await sign_up(client, language="ru")
    html = await get(client, "/settings/methods")
    for text in ("Способы аутентификации", "Включить", "Резервные коды",
                 "Приложение-аутентификатор", "Ключи доступа", "Выкл.", "Вывод средств"):
        assert text in html, text
    html = await get(client, "/settings/methods/totp/enable")
    assert "ПИН-код" in html and "Подтвердить" in html


@pytest.mark.parametrize("url", ["/settings/methods/totp/confirm",
                                 "/settings/methods/nothing/disable",
                                 "/settings/methods/totp/switch?op=teleport&on=1"])
async def test_unknown_or_out_of_place_is_a_404_page(client: httpx.AsyncClient, url: str
                                                     ) -> None:
    await sign_up(client)
    assert "Page not found" in await get(client, url, status=404)


async def test_second_factor_page_needs_a_login_in_progress(client: httpx.AsyncClient) -> None:
    redirected_to(await client.get("/login/second-factor"), "/login")
    client.cookies.set("stepup_login", "made-up")
    redirected_to(await client.get("/login/second-factor"), "/login?expired=1")
    assert "expired" in await get(client, "/login?expired=1")


async def test_password_only_login(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    client.cookies.clear()
    redirected_to(await log_in(client), "/settings/methods")


async def test_secure_cookies_use_host_prefix(settings: Settings, runtime: Runtime) -> None:
    secure = settings.model_copy(update={"cookie_secure": True})
    rt = Runtime.build(secure, runtime.clock)
    app = create_app(secure, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await c.get("/signup")
        cookie = r.headers["set-cookie"].lower()
        assert cookie.startswith("__host-stepup_pre=")
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "path=/" in cookie and "domain" not in cookie
        r = await submit(c, r.text, "/signup", email=EMAIL, password=PASSWORD, pin=PIN,
                         language="en")
        redirected_to(r, "/settings/methods")
        assert "__host-stepup_session=" in r.headers["set-cookie"].lower()
        assert "Authentication methods" in await get(c, "/settings/methods")
    await rt.engine.dispose()
