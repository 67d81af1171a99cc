"""The seed journeys through the portal's forms: TOTP, backup codes, switches, Disable."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from tests.pages.helpers import (
    PIN,
    check,
    codes_from,
    enable_backup_codes,
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


async def test_totp_enable_logout_login_with_second_factor(client: httpx.AsyncClient,
                                                           clock: FrozenClock) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/totp/enable")
    assert "Enter your PIN" in html
    r = await submit(client, html, "/settings/methods/totp/enable", pin=PIN)
    html = check(r)
    assert r.headers["cache-control"] == "no-store"
    assert '<svg' in html and "QR code for your authenticator app" in html
    for app in ("Google Authenticator", "Microsoft Authenticator", "Aegis Authenticator"):
        assert app in html
    assert "Time correction for codes" in html and "Set Automatically" in html
    secret = secret_from(html)
    assert len(secret) == 32 and secret not in r.headers.get("location", "")
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    # The last step asks what it will protect; both boxes ticked to start with.
    assert "Use it for:" in html
    confirm = form(html, "/settings/methods/totp/confirm").fields
    assert confirm["protect_login"] == confirm["protect_withdrawal"] == "1"

    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret, clock))
    location = redirected_to(r, "/settings/methods?done=enabled&method=totp")
    html = await get(client, location)
    assert "The authenticator app is enabled. This method now protects login and " \
           "withdrawals." in html
    totp = section(html, "totp")
    assert "Enabled" in totp and ">Disable<" in totp
    assert totp.count('class="switch switch-on"') == 2  # as the boxes said
    assert "switch=" not in totp and "op=login&amp;on=0" in totp
    assert "op=withdrawal&amp;on=0" in totp
    assert "Login protected by" in html and "Password only" not in html

    await log_out(client)
    clock.advance(30)
    r = await log_in(client)
    redirected_to(r, "/login/second-factor")
    cookie = r.headers["set-cookie"].lower()
    assert "stepup_login=" in cookie and "max-age=300" in cookie and "httponly" in cookie
    html = await get(client, "/login/second-factor")
    assert "Open your authenticator app and enter the code it shows." in html
    assert "Get your code by:" not in html  # nothing else to choose yet
    assert "Send code" not in html  # the app makes its own codes

    r = await submit(client, html, "/login/second-factor", code="000000")
    html = check(r, 400)
    assert "not valid" in html
    r = await submit(client, html, "/login/second-factor", code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods")
    assert "stepup_login" not in client.cookies
    assert "Enabled" in section(await get(client, "/settings/methods"), "totp")


async def test_wrong_and_drifted_totp_codes_are_messages(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/totp/enable")
    r = await submit(client, html, "/settings/methods/totp/enable", pin="999999")
    assert "PIN is not correct" in check(r, 400)
    html = check(await submit(client, html, "/settings/methods/totp/enable", pin=PIN))
    secret = secret_from(html)

    r = await submit(client, html, "/settings/methods/totp/confirm", code="12345")
    page = check(r, 400)
    # A typo keeps the set-up: the same key and QR code (tests/pages/test_totp_setup_again).
    assert "6-digit code" in page and secret_from(page) == secret and "<svg" in page

    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret, clock, offset_steps=10))
    page = check(r, 400)
    assert "alert-drift" in page and "about 5 minutes ahead" in page
    assert 'href="#clock-sync"' in page

    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods?done=enabled")


async def test_backup_codes_enable_regenerate_and_log_in(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    html = await get(client, "/settings/methods/backup_codes/enable")
    r = await submit(client, html, "/settings/methods/backup_codes/enable", pin=PIN)
    html = check(r)
    assert r.headers["cache-control"] == "no-store"
    codes = codes_from(html)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'data-action="print"' in html and 'data-action="download"' in html
    assert 'id="saved" required' in html and "I have saved them" in html
    assert "keep the last backup code" in html
    assert "print-codes" in html and "print-area" in html
    finish = form(html, "/settings/methods")
    assert finish.method == "get" and not any(c in str(finish.fields) for c in codes)
    html = await get(client, "/settings/methods?done=enabled&method=backup_codes")
    backup = section(html, "backup_codes")
    assert "10 unused codes left" in backup and ">Create new codes<" in backup

    html = await get(client, "/settings/methods/backup_codes/regenerate")
    r = await submit(client, html, "/settings/methods/backup_codes/regenerate", code="nope")
    assert "10 letters and digits" in check(r, 400)
    r = await submit(client, html, "/settings/methods/backup_codes/regenerate", code=codes[0])
    html = check(r)
    new = codes_from(html)
    assert len(new) == 10 and not set(new) & set(codes)
    assert "Your old backup codes no longer work." in html

    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor")
    # The channel picker: the app (chosen) and backup codes.
    assert 'href="/login/second-factor?method=backup_codes"' in html
    assert "Get your code by:" in html and 'aria-current="true"' in html
    html = await get(client, "/login/second-factor?method=backup_codes")
    assert 'name="method" value="backup_codes"' in html and 'inputmode="text"' in html
    r = await submit(client, html, "/login/second-factor", code=codes[1])  # an old one
    html = check(r, 400)
    r = await submit(client, html, "/login/second-factor", code=new[0].upper())
    redirected_to(r, "/settings/methods")
    assert "9 unused codes left" in section(await get(client, "/settings/methods"),
                                            "backup_codes")


async def test_low_backup_codes_warning_after_login(client: httpx.AsyncClient,
                                                    clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    codes = await enable_backup_codes(client)
    await log_out(client)
    for i, code in enumerate(codes[:8]):
        redirected_to(await log_in(client), "/login/second-factor")
        html = await get(client, "/login/second-factor?method=backup_codes")
        r = await submit(client, html, "/login/second-factor", code=code)
        location = redirected_to(r, "/settings/methods")
        if i < 7:
            assert "backup_low" not in location
            await log_out(client)
    # A backup-code login also asks to set up the lost methods again (seed 004).
    assert location == "/settings/methods?reconfigure=1&backup_low=1"
    html = await get(client, location)
    assert "You have 2 backup codes left." in html
    backup = section(html, "backup_codes")
    assert "2 unused codes left" in backup and "running out" in backup
    assert "keep the last backup code" in backup


async def test_switch_and_disable_need_a_code_from_the_method(client: httpx.AsyncClient,
                                                              clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    html = await get(client, "/settings/methods/totp/switch?op=withdrawal&on=1")
    assert "Turn on Withdrawal protection" in html
    r = await submit(client, html, "/settings/methods/totp/switch", code="111111")
    assert "not valid" in check(r, 400)
    r = await submit(client, html, "/settings/methods/totp/switch",
                     code=totp_now(secret, clock))
    location = redirected_to(r, "/settings/methods?done=switched")
    html = await get(client, location)
    totp = section(html, "totp")
    assert totp.count('class="switch switch-on"') == 2
    assert "were saved" in html
    clock.advance(30)

    html = await get(client, "/settings/methods/totp/switch?op=login&on=0")
    r = await submit(client, html, "/settings/methods/totp/switch",
                     code=totp_now(secret, clock))
    html = await get(client, redirected_to(r, "/settings/methods"))
    assert section(html, "totp").count('class="switch switch-on"') == 1
    clock.advance(30)

    html = await get(client, "/settings/methods/totp/disable")
    assert "Disable the authenticator app" in html
    r = await submit(client, html, "/settings/methods/totp/disable", code="abc")
    assert "6-digit code" in check(r, 400)
    r = await submit(client, html, "/settings/methods/totp/disable",
                     code=totp_now(secret, clock))
    html = await get(client, redirected_to(r, "/settings/methods?done=disabled"))
    assert "The authenticator app is disabled." in html
    assert "Disabled" in section(html, "totp")


async def test_too_many_wrong_codes_lock_with_a_message(client: httpx.AsyncClient,
                                                        clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    html = await get(client, "/settings/methods/totp/disable")
    statuses = []
    for _ in range(6):
        r = await submit(client, html, "/settings/methods/totp/disable", code="000000")
        statuses.append(r.status_code)
        page = check(r, r.status_code)
    assert statuses[-1] == 423 and 500 not in statuses
    assert "try again in" in page
