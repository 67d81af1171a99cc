"""Withdrawals through the portal's forms (seed 000 "Confirmation of withdrawals": PIN
code, then security code): the form, the PIN, the code typed beside the details it
confirms, the receipt; the refusals (wrong PIN, expired, second confirmation, CSRF); an
operation created by a portal through the integration API; and ``/login?next=``."""

from __future__ import annotations

import re

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store import codes
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
    spaced,
    submit,
    totp_now,
)
from tests.pages.test_oob import last_code

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


async def new_withdrawal(client: httpx.AsyncClient, amount: str = "0.25",
                         currency: str = "BTC", destination: str = DESTINATION) -> str:
    html = await get(client, "/operations/new")
    r = await submit(client, html, "/operations/new", amount=amount, currency=currency,
                     destination=destination)
    return redirected_to(r, "/operations/")


async def enter_pin(client: httpx.AsyncClient, url: str, pin: str = PIN) -> str:
    html = await get(client, url)
    r = await submit(client, html, f"{url}/pin", pin=pin)
    redirected_to(r, url)
    return await get(client, url)


async def switch_on_withdrawal(client: httpx.AsyncClient, secret: str,
                               clock: FrozenClock) -> None:
    url = "/settings/methods/totp/switch?op=withdrawal&on=1"
    html = await get(client, url)
    r = await submit(client, html, "/settings/methods/totp/switch", code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods?done=switched")
    clock.advance(30)


def step_card(html: str) -> str:
    m = re.search(r'<section class="card op-step".*?</section>', html, flags=re.S)
    assert m, "no step card"
    return m.group(0)


def details_card(html: str) -> str:
    m = re.search(r'<section class="card op-details".*?</section>', html, flags=re.S)
    assert m, "no details card"
    return m.group(0)


def receipt_of(html: str) -> str:
    m = re.search(r'<code id="receipt-token">([A-Za-z0-9_.-]+)</code>', html)
    assert m, "no receipt on the page"
    return m.group(1)


async def test_withdrawal_with_totp(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    assert 'href="/operations/new"' in await get(client, "/settings/methods")

    url = await new_withdrawal(client)
    html = await get(client, url)
    details = details_card(html)
    assert "0.25" in details and "BTC" in details
    assert f'<code class="op-destination" id="op-destination">{DESTINATION}</code>' in details
    assert "op-short" not in details and "…" not in details  # never shortened
    assert "Step 1 of 2" in html and "Enter your PIN" in html
    assert 'action="/operations/' not in details  # the forms are in the step card

    html = await enter_pin(client, url)
    step = step_card(html)
    assert "Step 2 of 2" in step and 'name="code"' in step
    assert "authenticator app" in step and "Send code" not in step
    # Dynamic linking: the details and the code field on one page, side by side, and the
    # recap right above the button.
    grid = html[html.index('<div class="op-grid">'):]
    assert grid.index("op-details") < grid.index('name="code"')
    assert f"You confirm: 0.25 BTC to {DESTINATION}" in step

    r = await submit(client, html, f"{url}/confirm", code=totp_now(secret, clock))
    redirected_to(r, url)
    html = await get(client, url)
    step = step_card(html)
    assert "Confirmed" in step and "Authenticator app" in step
    assert "2026-11-22 12:01 UTC" in step
    assert "<details class=\"receipt\">" in step and 'data-copy="receipt-token"' in step
    receipt = receipt_of(html)
    assert receipt.count(".") == 2

    # A second confirmation is refused, and the page still shows the receipt.
    clock.advance(30)
    r = await client.post(f"{url}/confirm", data={**form(html, "/logout").fields,
                                                  "method": "totp",
                                                  "code": totp_now(secret, clock)})
    html = check(r, 409)
    assert "This operation is already confirmed." in html
    assert receipt_of(html) == receipt


async def test_withdrawal_with_the_email_fallback(client: httpx.AsyncClient,
                                                  runtime: Runtime) -> None:
    await sign_up(client)  # no method at all: the code goes to the account e-mail
    url = await new_withdrawal(client, amount="150.5", currency="usd",
                               destination="DE89 3704 0044 0532 0130 00")
    html = await enter_pin(client, url)
    step = step_card(html)
    assert "Codes are sent to j***@example.com." in step
    assert "sent to your account e-mail" in step
    r = await submit(client, html, f"{url}/send")
    html = check(r)
    assert "We sent a code to j***@example.com." in html
    assert 'data-countdown="60"' in html
    details = details_card(html)
    assert "150.5" in details and "USD" in details and "DE89 3704 0044 0532 0130 00" in details
    async with runtime.db() as db:
        body = (await codes.outbox_for(db, EMAIL))[0].body
    assert "150.50 USD" in body  # USD has cents: the amount says them
    r = await submit(client, html, f"{url}/confirm", code=await last_code(runtime, EMAIL))
    redirected_to(r, url)
    html = await get(client, url)
    assert "Confirmed" in step_card(html) and "E-mail" in step_card(html)


async def test_wrong_pin_then_code_before_pin(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    html = await get(client, url)
    r = await submit(client, html, f"{url}/pin", pin="000000")
    html = check(r, 400)
    assert "The PIN is not correct" in html and "Step 1 of 2" in html
    assert DESTINATION in html  # still the whole operation, not an error page
    r = await client.post(f"{url}/confirm", data={**form(html, f"{url}/pin").fields,
                                                  "method": "email", "code": "123456"})
    html = check(r, 409)
    assert "Enter your PIN first." in html and "Enter your PIN" in step_card(html)


async def test_expired(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    html = await get(client, url)
    clock.advance(601)
    r = await submit(client, html, f"{url}/pin", pin=PIN)
    html = check(r, 409)
    assert "This operation has expired" in html
    assert 'action="/operations/' + url.rsplit("/", 1)[1] + '/pin"' not in html
    html = await get(client, url)
    assert "Expired" in step_card(html) and "can no longer be confirmed" in html
    assert 'href="/operations/new"' in step_card(html)


async def test_csrf_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    r = await client.post(f"{url}/pin", data={"pin": PIN, "csrf_token": "forged"})
    check(r, 403)
    r = await client.post(f"{url}/pin", data={"pin": PIN})
    check(r, 403)
    r = await client.post("/operations/new", data={"amount": "1", "currency": "USD",
                                                   "destination": "x"})
    check(r, 403)
    assert "Step 1 of 2" in await get(client, url)  # nothing moved


async def test_new_withdrawal_form_errors(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    html = await get(client, "/operations/new")
    r = await submit(client, html, "/operations/new", amount="1.005", currency="USD",
                     destination="x")
    html = check(r, 422)
    assert "USD amounts have at most 2 decimal places." in html
    assert 'value="1.005"' in html and 'aria-invalid="true"' in html
    r = await submit(client, html, "/operations/new", amount="0", currency="USD",
                     destination="x")
    assert "Enter an amount more than zero" in check(r, 422)
    r = await submit(client, html, "/operations/new", amount="5", currency="US$",
                     destination="x")
    assert "Enter a currency code" in check(r, 422)
    r = await submit(client, html, "/operations/new", amount="5", currency="USD",
                     destination="")
    assert "Enter the destination" in check(r, 422)
    # A decimal comma is read as a point.
    r = await submit(client, html, "/operations/new", amount="12,5", currency="eur",
                     destination="x")
    url = redirected_to(r, "/operations/")
    assert "12.5" in details_card(await get(client, url))


async def test_russian_operation_page(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    url = await new_withdrawal(client)
    html = await get(client, url)
    assert "Вывод средств" in html and "Введите ПИН-код" in html
    r = await submit(client, html, f"{url}/pin", pin="000000")
    assert "Неверный ПИН-код" in check(r, 400)


async def test_the_deadline_in_the_browsers_time_zone(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    # No zone told: UTC, and it says so.
    assert re.search(r"Confirm by</dt><dd><time[^>]*>2026-11-22 12:\d\d UTC</time>",
                     details_card(await get(client, url)))
    client.cookies.set("tz", "Europe/Moscow")
    m = re.search(r'Confirm by</dt><dd><time datetime="2026-11-22T12:(\d\d):00Z">'
                  r"Nov 22, 2026, 3:(\d\d)\u202fPM \(Moscow\)</time>",
                  details_card(await get(client, url)))
    assert m and m.group(1) == m.group(2)
    ru = spaced(details_card(await get(client, url + "?lang=ru")))
    assert re.search(r"Подтвердить до</dt><dd><time[^>]*>22 нояб\. 2026 г\., "
                     r"15:\d\d \(Москва\)</time>", ru), ru


async def test_not_logged_in_comes_back_after_login(client: httpx.AsyncClient,
                                                    clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    url = await new_withdrawal(client)
    await log_out(client)

    r = await client.get(url)
    login_url = redirected_to(r, "/login?next=")
    assert login_url == f"/login?next={url}"
    html = await get(client, login_url)
    assert f'<input type="hidden" name="next" value="{url}">' in html
    assert "Log in to continue." in html
    r = await submit(client, html, "/login", email=EMAIL, password=PASSWORD)
    redirected_to(r, "/login/second-factor")
    html = await get(client, "/login/second-factor")
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock))
    redirected_to(r, url)
    assert "Enter your PIN" in await get(client, url)
    # Once logged in, /login?next= goes straight there.
    redirected_to(await client.get(f"/login?next={url}"), url)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/",
                                    "/\\evil.example", "evil.example", "/\t/evil.example",
                                    "javascript:alert(1)", "///evil.example"])
async def test_next_only_goes_to_local_paths(client: httpx.AsyncClient, target: str) -> None:
    await sign_up(client)
    await log_out(client)
    html = await get(client, "/login", params={"next": target})
    assert 'name="next"' not in html
    r = await client.post("/login", data={**form(html, "/login").fields, "email": EMAIL,
                                          "password": PASSWORD, "next": target})
    assert redirected_to(r, "/") == "/settings/methods"


async def test_operation_of_another_user_is_not_found(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    await log_out(client)
    await sign_up(client, email="other@example.com")
    html = await get(client, url, status=404)
    assert "There is no such operation for this account" in html
    r = await client.post(f"{url}/pin", data={**form(html, "/logout").fields, "pin": PIN})
    check(r, 404)
    await get(client, "/operations/nonexistent", status=404)


async def test_created_by_a_portal_confirmed_on_the_page(client: httpx.AsyncClient,
                                                         runtime: Runtime) -> None:
    # A portal that sends its users to StepUp's own pages has a key of the app "portal".
    _, key = await apikeys.create(runtime, "portal", "app", Actor(), app="portal")
    auth = {"Authorization": f"Bearer {key}"}
    r = await client.post("/api/v1/users", headers=auth, json={
        "email": "client@example.com", "external_id": "c-1", "password": PASSWORD,
        "pin": PIN, "email_verified": True})  # the portal vouches for the address
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = await client.post(f"/api/v1/users/{user_id}/operations", headers=auth, json={
        "type": "withdrawal", "details": {"amount": "0.25", "currency": "BTC",
                                          "destination": DESTINATION}})
    assert r.status_code == 201, r.text
    url = f"/operations/{r.json()['id']}"

    login_url = redirected_to(await client.get(url), "/login?next=")
    html = await get(client, login_url)
    r = await submit(client, html, "/login", email="client@example.com", password=PASSWORD)
    redirected_to(r, url)  # no method protects login: straight back
    html = await enter_pin(client, url)
    r = await submit(client, html, f"{url}/send")
    html = check(r)
    code = await last_code(runtime, "client@example.com")
    r = await submit(client, html, f"{url}/confirm", code=code)
    redirected_to(r, url)
    html = await get(client, url)
    r = await client.get(f"/api/v1/users/{user_id}/operations/{url.rsplit('/', 1)[1]}",
                         headers=auth)
    assert r.json()["status"] == "confirmed" and r.json()["receipt"] == receipt_of(html)


async def test_remembered_device_never_skips_a_withdrawal(client: httpx.AsyncClient,
                                                          clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    await log_out(client)
    r = await log_in(client)
    html = await get(client, "/login/second-factor")
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock),
                     remember_device="1")
    redirected_to(r, "/settings/methods")
    url = await new_withdrawal(client)
    html = await enter_pin(client, url)
    assert 'name="code"' in step_card(html) and "authenticator app" in step_card(html)


async def test_wrong_codes_then_locked(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    url = await new_withdrawal(client)
    html = await enter_pin(client, url)
    statuses = []
    for attempt in range(6):
        r = await submit(client, html, f"{url}/confirm", code="000000")
        statuses.append(r.status_code)
        html = check(r, r.status_code)
        assert DESTINATION in html and 'name="code"' in html  # the operation, not a 500
        if attempt == 0:
            assert "The security code is not valid" in html
    assert statuses[0] == 400 and statuses[-1] == 423, statuses
    assert "Too many wrong attempts: try again in" in html


async def test_wrong_pins_then_locked(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    url = await new_withdrawal(client)
    html = await get(client, url)
    for _ in range(6):
        r = await submit(client, html, f"{url}/pin", pin="000000")
        html = check(r, r.status_code)
        assert r.status_code in (400, 423) and "Step 1 of 2" in html
    assert r.status_code == 423
    assert re.search(r'<div class="alert alert-error" role="alert"><strong>Error:</strong> '
                     r'[^<]+</div>', html)
