"""The portal asks the client to verify the account e-mail (issue 16, item 2): a banner
on every page until it is verified, a page for the code from the sign-up message, the
page the message's link opens, and a methods page that says exactly what confirms a
withdrawal."""

from __future__ import annotations

import re

import httpx

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.pages.helpers import (
    EMAIL,
    check,
    enable_totp,
    form,
    get,
    log_out,
    redirected_to,
    sign_up,
    submit,
    verification_code,
)
from tests.pages.test_operations import DESTINATION, switch_on_withdrawal

BANNER = 'id="verify-email-banner"'


def confirms(html: str) -> str:
    """The top card's line that says what confirms a withdrawal."""
    m = re.search(r'<div id="confirms-withdrawal">(.*?)</div>', html, flags=re.S)
    assert m, "no withdrawal line on the methods page"
    return " ".join(re.sub(r"<[^>]+>", " ", m.group(1)).split())


async def test_banner_code_page_and_what_confirms_a_withdrawal(
        client: httpx.AsyncClient) -> None:
    await sign_up(client, verify_email=False)
    html = await get(client, "/settings/methods")
    assert BANNER in html and "Verify your e-mail" in html
    assert "Withdrawal confirmed with Nothing yet" in confirms(html)
    assert "Verify your e-mail or switch on a method for this operation." in confirms(html)
    assert "No security code" not in html
    # Every page of the signed-in client carries it, but not the verification page itself.
    assert BANNER in await get(client, "/operations/new")
    page = await get(client, "/settings/email")
    assert BANNER not in page and "j***@example.com" in page and "24 hours" in page

    # A withdrawal is refused with what to do.
    r = await submit(client, await get(client, "/operations/new"), "/operations/new",
                     amount="0.25", currency="BTC", destination=DESTINATION)
    assert ("Nothing can confirm a withdrawal yet: verify your e-mail address, or switch on "
            "a method for withdrawals") in check(r, 409)

    r = await submit(client, page, "/settings/email/confirm", code="000000")
    assert "The security code is not valid." in check(r, 400)
    code = await verification_code(client)
    assert code is not None
    r = await submit(client, page, "/settings/email/confirm", code=code)
    html = await get(client, redirected_to(r, "/settings/methods?done=email_verified"))
    assert "Your e-mail address is verified." in html and BANNER not in html
    assert confirms(html) == ("Withdrawal confirmed with A code sent to your e-mail "
                              "j***@example.com")
    assert redirected_to(await client.get("/settings/email"), "/settings/methods")
    assert "E-mail address verified" in await get(client, "/settings/activity")


async def test_the_methods_page_names_the_methods_switched_on(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client, verify_email=False)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    html = await get(client, "/settings/methods")
    assert confirms(html) == "Withdrawal confirmed with Authenticator app"
    # The banner stays: the address is still unverified.
    assert BANNER in html


async def test_send_again_from_the_banner(client: httpx.AsyncClient,
                                          clock: FrozenClock) -> None:
    await sign_up(client, verify_email=False)
    first = await verification_code(client)
    html = await get(client, "/settings/methods")
    r = await submit(client, html, "/settings/email/send")
    assert "Please wait" in check(r, 429) and 'data-countdown="' in r.text
    clock.advance(61)
    r = await submit(client, html, "/settings/email/send")
    assert "We sent a new code and link to j***@example.com." in check(r)
    second = await verification_code(client)
    assert second is not None and first is not None
    r = await submit(client, r.text, "/settings/email/confirm", code=second or "")
    redirected_to(r, "/settings/methods?done=email_verified")


async def test_the_link_page_verifies_on_its_button_logged_out_too(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client, "ru@example.com", language="ru", verify_email=False)
    await log_out(client)
    r = await client.get("/api/v1/dev/outbox", params={"to": "ru@example.com"})
    body = r.json()["messages"][0]["body"]
    assert "Подтвердите этот адрес" in body
    link = re.search(r"https?://[^\s/]+(/email/verify/\S+)", body)
    assert link
    html = await get(client, link.group(1))
    assert "Подтвердить адрес электронной почты" in html or "Verify my e-mail" in html
    r = await client.post(link.group(1), data=form(html, link.group(1)).fields)
    assert 'id="email-verified"' in check(r)
    r = await client.post(link.group(1), data=form(html, link.group(1)).fields)
    assert "no longer works" in check(r, 400) or "больше не действует" in r.text
    # Logged in again: no banner.
    page = await get(client, "/login")
    r = await submit(client, page, "/login", email="ru@example.com",
                     password="violet-harbour-7-lanterns")
    assert BANNER not in await get(client, redirected_to(r, "/settings/methods"))
    assert EMAIL != "ru@example.com"


async def test_a_user_the_portal_created_is_offered_to_send_the_message(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    from stepup.services import apikeys
    from stepup.services.runtime import Actor

    _, key = await apikeys.create(runtime, "portal", "app", Actor(), app="portal")
    r = await client.post("/api/v1/users", headers={"Authorization": f"Bearer {key}"}, json={
        "email": "client@example.com", "password": "violet-harbour-7-lanterns"})
    assert r.status_code == 201, r.text
    page = await get(client, "/login")
    r = await submit(client, page, "/login", email="client@example.com",
                     password="violet-harbour-7-lanterns")
    html = await get(client, redirected_to(r, "/settings/methods"))
    # Nothing was sent: the banner does not claim a message, the page offers to send it.
    assert BANNER in html and "c***@example.com" not in html.split("</header>")[0]
    assert "client@example.com is not verified yet" in html
    page = await get(client, "/settings/email")
    assert "Click Send again: we will send a message" in page
    r = await submit(client, page, "/settings/email/send")
    assert "We sent a message with a code and a link to c***@example.com" in check(r)
