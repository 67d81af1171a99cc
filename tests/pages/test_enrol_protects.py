"""The last step of every set-up asks "Use it for: Login / Withdrawal", and the notice
after enabling says, in one whole sentence, what is now protected (issue 16, item 1)."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.pages.helpers import (
    PIN,
    check,
    codes_from,
    enable_totp,
    form,
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
from tests.pages.test_oob import E164, EMAIL, last_code, start_sms
from tests.pages.test_passkeys import options_from
from tests.support.passkey import SoftPasskey

SMS_CONFIRM = "/settings/methods/sms/confirm"


def boxes(html: str, action: str) -> dict[str, bool]:
    fields = form(html, action).fields
    assert fields.get("protects_asked") == "1", fields
    return {op: fields.get(f"protect_{op}") == "1" for op in ("login", "withdrawal")}


async def test_sms_asks_what_to_protect_and_a_typo_keeps_the_choice(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    html = await start_sms(client)
    assert "Use it for:" in html and "no other code is asked" in html
    assert boxes(html, SMS_CONFIRM) == {"login": True, "withdrawal": True}
    # A wrong code: the boxes stay as the user left them.
    r = await submit(client, html, SMS_CONFIRM, code="000000", protect_withdrawal="")
    html = check(r, 400)
    assert boxes(html, SMS_CONFIRM) == {"login": True, "withdrawal": False}
    r = await submit(client, html, SMS_CONFIRM, code=await last_code(runtime, E164))
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled&method=sms"))
    assert "SMS codes are enabled. This method now protects login." in html
    sms = section(html, "sms")
    assert "op=login&amp;on=0" in sms and "op=withdrawal&amp;on=1" in sms


async def test_resend_keeps_the_boxes_as_ticked(client: httpx.AsyncClient,
                                                runtime: Runtime, clock: FrozenClock) -> None:
    """"Resend code" belongs to the code form: it sends the boxes too, and the page it
    draws — "please wait" (429) or the new code — keeps them as the user left them."""
    await sign_up(client)
    html = await start_sms(client)
    send = "/settings/methods/sms/send-code"
    assert form(html, send).fields["next"] == "enroll"
    # Too early: the wait is told and Withdrawal stays unticked.
    r = await submit(client, html, send, protect_withdrawal="")
    html = check(r, 429)
    assert "Please wait 60 seconds" in html
    assert boxes(html, SMS_CONFIRM) == {"login": True, "withdrawal": False}
    clock.advance(60)
    html = check(await submit(client, html, send))
    assert boxes(html, SMS_CONFIRM) == {"login": True, "withdrawal": False}
    r = await submit(client, html, SMS_CONFIRM, code=await last_code(runtime, E164))
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled&method=sms"))
    assert "SMS codes are enabled. This method now protects login." in html
    sms = section(html, "sms")
    assert "op=login&amp;on=0" in sms and "op=withdrawal&amp;on=1" in sms


async def test_a_method_enabled_protecting_nothing_says_so(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/email/enable")
    html = check(await submit(client, html, "/settings/methods/email/enable", pin=PIN))
    r = await submit(client, html, "/settings/methods/email/confirm",
                     code=await last_code(runtime, EMAIL), protect_login="",
                     protect_withdrawal="")
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled"))
    assert ("This method protects nothing yet: switch it on for login or withdrawals on "
            "the Authentication methods page.") in html
    assert 'class="switch switch-on"' not in section(html, "email")


async def test_backup_codes_ask_with_the_pin_login_only_when_first(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """Backup codes are enabled the moment the PIN is given: that step asks. Being a
    fallback, they are offered with nothing ticked — except as the first method, which
    protects login."""
    await sign_up(client)
    html = await get(client, "/settings/methods/backup_codes/enable")
    action = "/settings/methods/backup_codes/enable"
    assert boxes(html, action) == {"login": True, "withdrawal": False}
    assert "a backup code lets you log in when your usual method is lost" in html
    # A wrong PIN keeps the boxes as the user left them.
    r = await submit(client, html, action, pin="000000", protect_withdrawal="1")
    html = check(r, 400)
    assert boxes(html, action) == {"login": True, "withdrawal": True}
    html = check(await submit(client, html, action, pin=PIN))
    assert len(codes_from(html)) == 10
    assert ("Backup codes are now enabled. This method now protects login and "
            "withdrawals.") in html


async def test_backup_codes_after_another_method_protect_nothing_by_default(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    html = await get(client, "/settings/methods/backup_codes/enable")
    action = "/settings/methods/backup_codes/enable"
    assert boxes(html, action) == {"login": False, "withdrawal": False}
    html = check(await submit(client, html, action, pin=PIN))
    assert "Backup codes are now enabled. This method protects nothing yet" in html


async def test_a_passkey_asks_too_and_one_more_passkey_does_not(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    passkey = SoftPasskey()
    html = await get(client, "/settings/methods/webauthn/enable")
    html = check(await submit(client, html, "/settings/methods/webauthn/enable", pin=PIN))
    assert boxes(html, "/settings/methods/webauthn/confirm") == {"login": True,
                                                                 "withdrawal": True}
    r = await submit(client, html, "/settings/methods/webauthn/confirm",
                     code=passkey.create(options_from(html, "create")),
                     protect_login="")
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled"))
    assert "This method now protects withdrawals." in html
    # Adding one more passkey changes nothing the method protects: no boxes.
    html = await get(client, "/settings/methods/webauthn/add")
    html = check(await submit(client, html, "/settings/methods/webauthn/add", pin=PIN))
    assert "Use it for:" not in html


async def test_the_notice_is_a_whole_russian_sentence(client: httpx.AsyncClient,
                                                      clock: FrozenClock) -> None:
    await sign_up(client, language="ru")
    html = await get(client, "/settings/methods/totp/enable")
    html = check(await submit(client, html, "/settings/methods/totp/enable", pin=PIN))
    assert "Использовать для:" in html
    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret_from(html), clock))
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled"))
    assert "Теперь этот способ защищает вход и вывод средств." in html


async def test_login_offers_the_methods_that_protect_login_and_backup_codes(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """The second-factor page offers every enabled method switched on for login, and
    backup codes; an e-mail method that protects only withdrawals is not offered."""
    await sign_up(client)
    await enable_totp(client, clock)
    html = await start_sms(client)
    r = await submit(client, html, SMS_CONFIRM, code=await last_code(runtime, E164),
                     protect_withdrawal="")
    redirected_to(r, "/settings/methods?done=enabled")
    html = await get(client, "/settings/methods/email/enable")
    html = check(await submit(client, html, "/settings/methods/email/enable", pin=PIN))
    r = await submit(client, html, "/settings/methods/email/confirm",
                     code=await last_code(runtime, EMAIL), protect_login="")
    redirected_to(r, "/settings/methods?done=enabled")
    html = await get(client, "/settings/methods/backup_codes/enable")
    check(await submit(client, html, "/settings/methods/backup_codes/enable", pin=PIN))
    await log_out(client)
    clock.advance(30)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor")
    offered = {t for t in ("totp", "sms", "email", "backup_codes")
               if f"/login/second-factor?method={t}" in html
               or f'name="method" value="{t}"' in html}
    assert offered == {"totp", "sms", "backup_codes"}, offered
