"""SMS, e-mail and WhatsApp codes through the portal's forms (seed 001): enable in two
steps, resend with a countdown, switch and Disable with a code sent by the Send button,
log in choosing the channel, and the development outbox page."""

from __future__ import annotations

import base64
import re

import httpx
import pytest

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.keyring import KeyRing
from stepup.services.runtime import Runtime
from stepup.store import codes
from stepup.web.app import create_app
from tests.pages.helpers import (
    EMAIL,
    PIN,
    check,
    enable_totp,
    form,
    get,
    log_in,
    log_out,
    redirected_to,
    section,
    sign_up,
    submit,
)

PHONE = "+7 912 345 45 67"
E164 = "+79123454567"
MASKED = "+7 *** ***-45-67"
MASKED_EMAIL = "j***@example.com"


async def last_code(runtime: Runtime, to: str) -> str:
    """The code in the newest outbox message to ``to``."""
    async with runtime.db() as db:
        rows = await codes.outbox_for(db, to)
    assert rows, f"nothing was sent to {to}"
    m = re.search(r"\b(\d{6})\b", rows[0].body)
    assert m, rows[0].body
    return m.group(1)


async def outbox_count(runtime: Runtime, to: str) -> int:
    async with runtime.db() as db:
        return len(await codes.outbox_for(db, to))


async def start_sms(client: httpx.AsyncClient, phone: str = PHONE) -> str:
    html = await get(client, "/settings/methods/sms/enable")
    return check(await submit(client, html, "/settings/methods/sms/enable", phone=phone,
                              pin=PIN))


async def enable_sms(client: httpx.AsyncClient, runtime: Runtime) -> None:
    html = await start_sms(client)
    r = await submit(client, html, "/settings/methods/sms/confirm",
                     code=await last_code(runtime, E164))
    redirected_to(r, "/settings/methods?done=enabled&method=sms")


async def enable_email(client: httpx.AsyncClient, runtime: Runtime, **choice: str) -> None:
    """``choice``: the "Use it for" boxes changed (``protect_login=""`` unticks)."""
    html = await get(client, "/settings/methods/email/enable")
    html = check(await submit(client, html, "/settings/methods/email/enable", pin=PIN))
    r = await submit(client, html, "/settings/methods/email/confirm",
                     code=await last_code(runtime, EMAIL), **choice)
    redirected_to(r, "/settings/methods?done=enabled&method=email")


async def test_enable_sms_in_two_steps(client: httpx.AsyncClient, runtime: Runtime,
                                       clock: FrozenClock) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/sms/enable")
    # The example is a mobile number of the page's country (phonenumbers' own example).
    assert "Step 1 of 2" in html and "international format, e.g. +44 7400 123456" in html.lower()
    f = form(html, "/settings/methods/sms/enable")
    assert {"phone", "pin", "csrf_token"} <= set(f.fields)
    assert 'type="tel"' in html and 'autocomplete="tel"' in html and ">Send<" in html

    r = await submit(client, html, "/settings/methods/sms/enable", phone=PHONE, pin=PIN)
    html = check(r)
    assert r.headers["cache-control"] == "no-store"
    assert "Step 2 of 2" in html and f"We sent a code to {MASKED}." in html
    assert E164 not in html  # only the masked number is shown
    assert "valid for 5 minutes" in html
    assert 'data-countdown="60"' in html and "Resend code" in html
    assert form(html, "/settings/methods/sms/send-code").fields["next"] == "enroll"
    assert 'autocomplete="one-time-code"' in html and "from the SMS we sent you" in html
    code = await last_code(runtime, E164)

    wrong = "000000" if code != "000000" else "111111"
    r = await submit(client, html, "/settings/methods/sms/confirm", code=wrong)
    page = check(r, 400)
    assert "not valid" in page and f"Waiting for the code sent to {MASKED}." in page

    r = await submit(client, page, "/settings/methods/sms/confirm", code=code)
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled&method=sms"))
    assert "SMS codes are enabled." in html
    sms = section(html, "sms")
    assert "Enabled" in sms and f"Codes are sent to {MASKED}" in sms and ">Disable<" in sms
    assert 'class="switch switch-on"' in sms  # the first method protects login
    ident = html[html.index("Security identities"):html.index('id="method-totp"')]
    phone_row = ident[ident.index("Phone"):ident.index("Verification grade")]
    assert MASKED in phone_row and ">Verified<" in phone_row
    assert "Grade 1" in ident and "Login protected by" in ident


async def test_enable_email_is_prefilled_with_the_account_address(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/email/enable")
    assert form(html, "/settings/methods/email/enable").fields["email"] == EMAIL
    assert 'type="email"' in html
    r = await submit(client, html, "/settings/methods/email/enable", email="", pin=PIN)
    html = check(r)
    assert f"We sent a code to {MASKED_EMAIL}." in html
    # The JSON outbox of development mode holds the same message.
    data = (await client.get("/api/v1/dev/outbox", params={"to": EMAIL})).json()
    body = data["messages"][0]["body"]
    code = re.search(r"\b(\d{6})\b", body).group(1)  # type: ignore[union-attr]
    r = await submit(client, html, "/settings/methods/email/confirm", code=code)
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled&method=email"))
    assert f"Codes are sent to {MASKED_EMAIL}" in section(html, "email")
    ident = html[html.index("Security identities"):html.index('id="method-totp"')]
    assert ident.count(">Verified<") == 1  # the e-mail; the phone is not verified


@pytest.mark.parametrize(("phone", "message"), [
    ("12345", "international format"),
    ("+44 20 7946 0000", "mobile phone number"),
    ("+44 7700", "too short"),
    ("+44 7400 1234567890", "too long"),
    ("+999 1234567", "country code is unknown"),
    ("+44 7700 900123", "not a valid phone number"),  # the old example: a drama number
])
async def test_a_wrong_phone_is_an_error_on_the_phone_field(
        client: httpx.AsyncClient, runtime: Runtime, phone: str, message: str) -> None:
    await sign_up(client)
    sent = await outbox_count(runtime, "")  # the sign-up's e-mail verification
    html = await get(client, "/settings/methods/sms/enable")
    r = await submit(client, html, "/settings/methods/sms/enable", phone=phone, pin=PIN)
    page = check(r, 422)
    error = re.search(r'<p class="field-error" id="phone-error">([^<]+)</p>', page)
    assert error and message in error.group(1), page
    assert 'aria-invalid="true"' in page and f'value="{phone}"' in page
    assert "Step 1 of 2" in page
    html = await get(client, "/settings/methods")
    assert "Waiting for the code" not in section(html, "sms")
    assert await outbox_count(runtime, "") == sent


async def test_a_wrong_pin_or_address_is_an_error_on_its_field(client: httpx.AsyncClient,
                                                               runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/whatsapp/enable")
    assert "use on WhatsApp" in html
    r = await submit(client, html, "/settings/methods/whatsapp/enable", phone=PHONE,
                     pin="999999")
    page = check(r, 400)
    assert 'id="pin-error"' in page and "PIN is not correct" in page
    assert f'value="{PHONE}"' in page
    assert await outbox_count(runtime, E164) == 0  # the PIN is checked before any send
    html = await get(client, "/settings/methods/email/enable")
    r = await submit(client, html, "/settings/methods/email/enable", email="not-an-address",
                     pin=PIN)
    page = check(r, 422)
    assert 'id="email-error"' in page and "not valid" in page


async def test_russian_field_errors(client: httpx.AsyncClient) -> None:
    await sign_up(client, language="ru")
    html = await get(client, "/settings/methods/sms/enable")
    assert "Номер мобильного телефона" in html and "Шаг 1 из 2" in html
    r = await submit(client, html, "/settings/methods/sms/enable", phone="12345", pin=PIN)
    page = check(r, 422)
    assert "в международном формате" in page


async def test_resend_too_early_says_how_long_to_wait(client: httpx.AsyncClient,
                                                      runtime: Runtime,
                                                      clock: FrozenClock) -> None:
    await sign_up(client)
    html = await start_sms(client)
    first = await last_code(runtime, E164)
    r = await submit(client, html, "/settings/methods/sms/send-code")
    page = check(r, 429)
    assert "Please wait 60 seconds before asking for a new code." in page
    assert 'data-countdown="60"' in page and "Step 2 of 2" in page
    clock.advance(45)
    r = await submit(client, page, "/settings/methods/sms/send-code")
    assert "Please wait 15 seconds" in check(r, 429)
    assert await outbox_count(runtime, E164) == 1
    clock.advance(15)
    r = await submit(client, page, "/settings/methods/sms/send-code")
    html = check(r)
    assert f"We sent a code to {MASKED}." in html and 'data-countdown="60"' in html
    second = await last_code(runtime, E164)
    assert await outbox_count(runtime, E164) == 2
    if second != first:  # the new code replaced the old one
        r = await submit(client, html, "/settings/methods/sms/confirm", code=first)
        html = check(r, 400)
    r = await submit(client, html, "/settings/methods/sms/confirm", code=second)
    redirected_to(r, "/settings/methods?done=enabled&method=sms")


async def test_a_pending_enrollment_offers_enter_code_and_start_again(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    await start_sms(client)
    html = await get(client, "/settings/methods")
    sms = section(html, "sms")
    assert f"Waiting for the code sent to {MASKED}." in sms
    assert 'href="/settings/methods/sms/confirm"' in sms and ">Enter code<" in sms
    assert 'href="/settings/methods/sms/enable"' in sms and ">Start again<" in sms
    assert ">Enable<" not in sms and "Disabled" in sms

    html = await get(client, "/settings/methods/sms/confirm")
    assert f"Waiting for the code sent to {MASKED}." in html
    # Start again with another number: the code for the first one no longer counts.
    clock.advance(61)
    old = await last_code(runtime, E164)
    html = await get(client, "/settings/methods/sms/enable")
    html = check(await submit(client, html, "/settings/methods/sms/enable",
                              phone="+44 7400 123456", pin=PIN))
    assert "We sent a code to +44 **** **3456." in html
    r = await submit(client, html, "/settings/methods/sms/confirm", code=old)
    check(r, 400)
    r = await submit(client, html, "/settings/methods/sms/confirm",
                     code=await last_code(runtime, "+447400123456"))
    redirected_to(r, "/settings/methods?done=enabled&method=sms")
    # Enabled: the confirm page has nothing to do.
    redirected_to(await client.get("/settings/methods/sms/confirm"), "/settings/methods")


async def test_a_failed_delivery_enables_nothing(settings: Settings, runtime: Runtime) -> None:
    broken = settings.model_copy(update={"sms_provider": "twilio"})  # and no credentials
    rt = Runtime.build(broken, runtime.clock)
    app = create_app(broken, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await sign_up(c)
        html = await get(c, "/settings/methods/sms/enable")
        r = await submit(c, html, "/settings/methods/sms/enable", phone=PHONE, pin=PIN)
        page = check(r, 400)
        assert "could not send the code by SMS" in page and "Nothing was changed" in page
        assert "Step 1 of 2" in page and f'value="{PHONE}"' in page
        html = await get(c, "/settings/methods")
        sms = section(html, "sms")
        assert "Disabled" in sms and "Waiting for the code" not in sms
        # Not a cooldown either: the refund lets the user try again at once.
        r = await submit(c, page, "/settings/methods/sms/enable", phone=PHONE, pin=PIN)
        assert "could not send" in check(r, 400)
    await rt.engine.dispose()


async def test_disable_sms_with_a_code_from_the_send_button(client: httpx.AsyncClient,
                                                            runtime: Runtime,
                                                            clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_sms(client, runtime)
    html = await get(client, "/settings/methods/sms/disable")
    assert "Disable SMS codes" in html and f"Codes are sent to {MASKED}." in html
    assert ">Send code<" in html and "data-countdown" not in html
    # The enrollment code went out moments ago, but a code to manage SMS is another
    # purpose: it is sent at once; asking again so soon is refused with the wait.
    r = await submit(client, html, "/settings/methods/sms/send-code")
    html = check(r)
    assert f"We sent a code to {MASKED}." in html and 'data-countdown="60"' in html
    assert "Resend code" in html and "Disable SMS codes" in html
    r = await submit(client, html, "/settings/methods/sms/send-code")
    page = check(r, 429)
    assert "Please wait 60 seconds" in page and 'data-countdown="60"' in page
    clock.advance(60)
    r = await submit(client, page, "/settings/methods/sms/send-code")
    html = check(r)
    code = await last_code(runtime, E164)
    r = await submit(client, html, "/settings/methods/sms/disable", code=code)
    html = await get(client, redirected_to(r, "/settings/methods?done=disabled&method=sms"))
    assert "SMS codes are disabled." in html and "Disabled" in section(html, "sms")
    ident = html[html.index("Security identities"):html.index('id="method-totp"')]
    assert "Not verified" in ident[ident.index("Phone"):]
    assert "Grade 1" in ident  # the grade records a past verification


async def test_switch_needs_a_code_from_that_same_channel(client: httpx.AsyncClient,
                                                          runtime: Runtime,
                                                          clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_sms(client, runtime)
    # Nothing ticked at its set-up: withdrawal is switched on below.
    await enable_email(client, runtime, protect_login="", protect_withdrawal="")
    clock.advance(61)
    html = await get(client, "/settings/methods/email/switch?op=withdrawal&on=1")
    assert "Turn on Withdrawal protection" in html
    assert f"Codes are sent to {MASKED_EMAIL}." in html
    sms_page = await get(client, "/settings/methods/sms/switch?op=withdrawal&on=1")
    r = await submit(client, sms_page, "/settings/methods/sms/send-code")
    sms_code = await last_code(runtime, E164)
    check(r)
    r = await submit(client, html, "/settings/methods/email/send-code")
    html = check(r)
    assert f"We sent a code to {MASKED_EMAIL}." in html
    assert form(html, "/settings/methods/email/switch").fields["op"] == "withdrawal"
    email_code = await last_code(runtime, EMAIL)
    if sms_code != email_code:
        r = await submit(client, html, "/settings/methods/email/switch", code=sms_code)
        assert "not valid" in check(r, 400)
    r = await submit(client, html, "/settings/methods/email/switch", code=email_code)
    html = await get(client, redirected_to(r, "/settings/methods?done=switched&method=email"))
    assert section(html, "email").count('class="switch switch-on"') == 1


async def test_log_in_choosing_sms(client: httpx.AsyncClient, runtime: Runtime,
                                   clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)  # protects login
    await enable_sms(client, runtime)
    clock.advance(61)
    html = await get(client, "/settings/methods/sms/switch?op=login&on=1")
    html = check(await submit(client, html, "/settings/methods/sms/send-code"))
    r = await submit(client, html, "/settings/methods/sms/switch",
                     code=await last_code(runtime, E164))
    redirected_to(r, "/settings/methods?done=switched")
    await log_out(client)

    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor")
    assert "Get your code by:" in html
    assert 'href="/login/second-factor?method=sms"' in html and MASKED in html
    assert "Open your authenticator app" in html  # the app comes first

    html = await get(client, "/login/second-factor?method=sms")
    assert f"Codes are sent to {MASKED}." in html and ">Send code<" in html
    assert 'name="method" value="sms"' in html
    clock.advance(61)
    r = await submit(client, html, "/login/second-factor/send")
    html = check(r)
    assert f"We sent a code to {MASKED}." in html and 'data-countdown="60"' in html
    r = await submit(client, html, "/login/second-factor/send")
    page = check(r, 429)
    assert "Please wait 60 seconds" in page and 'name="method" value="sms"' in page
    code = await last_code(runtime, E164)
    assert "to log in" in (await client.get("/api/v1/dev/outbox",
                                            params={"to": E164})).json()["messages"][0]["body"]
    r = await submit(client, page, "/login/second-factor", code=code)
    redirected_to(r, "/settings/methods")
    assert "Enabled" in section(await get(client, "/settings/methods"), "sms")


async def test_an_expired_code_says_so(client: httpx.AsyncClient, runtime: Runtime,
                                       clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_email(client, runtime)
    clock.advance(61)
    html = await get(client, "/settings/methods/email/disable")
    html = check(await submit(client, html, "/settings/methods/email/send-code"))
    code = await last_code(runtime, EMAIL)
    clock.advance(301)
    r = await submit(client, html, "/settings/methods/email/disable", code=code)
    page = check(r, 400)
    assert "expired" in page and ">Send code<" in page
    assert f"Codes are sent to {MASKED_EMAIL}." in page


async def test_login_page_messages_for_expired_codes_and_failed_sends(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    # Codes that live 2 minutes, so one can expire within the 5-minute login attempt.
    short = settings.model_copy(update={"code_ttl_seconds": 120})
    rt = Runtime.build(short, clock)
    app = create_app(short, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await sign_up(c)
        await enable_email(c, rt)  # the first method: protects login
        await log_out(c)
        clock.advance(61)
        redirected_to(await log_in(c), "/login/second-factor")
        html = await get(c, "/login/second-factor")
        assert f"Codes are sent to {MASKED_EMAIL}." in html
        assert "Get your code by:" not in html  # one method, nothing to choose
        html = check(await submit(c, html, "/login/second-factor/send"))
        assert "valid for 2 minutes" in html
        code = await last_code(rt, EMAIL)
        clock.advance(121)
        r = await submit(c, html, "/login/second-factor", code=code)
        page = check(r, 400)
        assert "expired" in page and ">Send code<" in page
        # A new code works.
        html = check(await submit(c, page, "/login/second-factor/send"))
        r = await submit(c, html, "/login/second-factor", code=await last_code(rt, EMAIL))
        redirected_to(r, "/settings/methods")
    await rt.engine.dispose()


async def test_login_page_says_when_a_code_cannot_be_sent(
        client: httpx.AsyncClient, settings: Settings, runtime: Runtime,
        clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_sms(client, runtime)  # protects login
    # The same database, now with an SMS provider that fails.
    broken = settings.model_copy(update={"sms_provider": "twilio"})
    rt = Runtime.build(broken, clock)
    app = create_app(broken, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    clock.advance(61)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        redirected_to(await log_in(c), "/login/second-factor")
        html = await get(c, "/login/second-factor")
        r = await submit(c, html, "/login/second-factor/send")
        page = check(r, 400)
        assert "could not send the code by SMS" in page and "another method" in page
        assert 'name="method" value="sms"' in page
    await rt.engine.dispose()


async def test_dev_outbox_page(client: httpx.AsyncClient, runtime: Runtime,
                               clock: FrozenClock) -> None:
    await sign_up(client)
    await start_sms(client)
    clock.advance(5)
    html = await get(client, "/settings/methods/email/enable")
    check(await submit(client, html, "/settings/methods/email/enable", pin=PIN))
    html = await get(client, "/dev/outbox")
    # The sign-up's e-mail verification, the SMS and the e-mail codes.
    assert "Development outbox" in html and "3 messages, newest first." in html
    assert html.index(EMAIL) < html.index(E164)  # newest first
    assert "security code" in html and "Subject" in html and "<pre" in html
    assert "2026-11-22 12:00:05 UTC" in html and "E-mail" in html and "SMS" in html
    html = await get(client, "/dev/outbox", params={"to": E164})
    assert "1 message, newest first." in html and EMAIL not in html.split("</form>", 2)[-1]
    assert "No messages." in await get(client, "/dev/outbox", params={"to": "nobody"})


def test_dev_outbox_page_checks_the_settings() -> None:
    from stepup.web.portal import dev

    class _Rt:
        def __init__(self, env: str) -> None:
            self.settings = Settings(env=env)

    class _Page:
        def __init__(self, env: str) -> None:
            self.rt = _Rt(env)

    assert dev.available(_Page("development"))  # type: ignore[arg-type]
    assert not dev.available(_Page("production"))  # type: ignore[arg-type]


async def test_dev_outbox_is_a_404_in_production(settings: Settings, runtime: Runtime) -> None:
    prod = settings.model_copy(update={
        "env": "production", "keyring": KeyRing.generate_spec("k1"),
        "secret_key": base64.b64encode(b"s" * 32).decode(), "public_url": "https://x",
        "cookie_secure": True})
    rt = Runtime.build(prod, runtime.clock)
    app = create_app(prod, runtime=rt, migrate_on_start=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await c.get("/dev/outbox")
        assert r.status_code == 404 and "Development outbox" not in r.text
        assert (await c.get("/api/v1/dev/outbox")).status_code == 404
    await rt.engine.dispose()
