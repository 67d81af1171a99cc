"""Security notices: queued with the change they tell about, sent through the real SMTP
test server (and the Twilio stand-in for SMS), in the user's language, to the right
people; kinds an operator turned off are not sent, recovery notices always are; a
failing mail server is retried later, and two senders never send one notice twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import notifications
from stepup.services.runtime import Actor
from stepup.store import queries
from stepup.store.models import AuditEvent, NotificationQueue
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    auth,
    enable_backup_codes,
    enable_totp,
    login,
    login_token,
    session_for,
    totp_now,
    verify,
    wrong_totp,
)
from tests.api.oob_support import UK_MOBILE, Stack, closed_port, verifies_email

IP = "203.0.113.7"


async def signed_in(stack: Stack, email: str = EMAIL, language: str = "en") -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": PASSWORD, "pin": PIN, "language": language})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, email)


def notices(stack: Stack, to: str = EMAIL) -> list[EmailMessage]:
    """Security notices in the inbox (not the code e-mails): they carry no code."""
    return [m for m in stack.mail_to(to) if "security code" not in str(m["Subject"])
            and "код" not in str(m["Subject"])]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def queued(stack: Stack) -> list[NotificationQueue]:
    async with stack.rt.db() as db:
        q = select(NotificationQueue).order_by(NotificationQueue.created_at,
                                               NotificationQueue.id)
        return list((await db.execute(q)).scalars().all())


async def queued_to(stack: Stack) -> list[tuple[str, str | None]]:
    """(channel, recipient) of the queued notices, the recipient opened with the keys."""
    return sorted((n.channel, stack.rt.destinations.read(n)) for n in await queued(stack))


async def test_method_changes_are_told_by_email_with_when_where_and_what_to_do(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await enable_totp(stack.client, token, clock)
    # Queued in the same transaction, sent only by the sender.
    assert [n.kind for n in await queued(stack)] == ["method.enabled"]
    assert notices(stack) == []
    assert await notifications.deliver_due(stack.rt) == 1
    [mail] = notices(stack)
    assert str(mail["Subject"]).strip().startswith("StepUp Test security notice:")
    body = text_of(mail)
    assert "The authenticator app was enabled on your account." in body
    assert "When: 2026-11-22 12:00 UTC" in body
    assert f"IP address: {IP}" in body
    assert "contact support" in body
    assert "The authenticator app was enabled on your account." in html_of(mail)
    assert await notifications.deliver_due(stack.rt) == 0  # sent once

    # Switching what it protects, then disabling it: a notice each.
    r = await stack.switch(token, "totp", totp_now(secret, clock), withdrawal=True)
    assert r.status_code == 200, r.text
    clock.advance(30)
    r = await stack.disable(token, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    assert await notifications.deliver_due(stack.rt) == 2
    texts = [text_of(m) for m in notices(stack)[1:]]
    assert "Protection settings changed for the authenticator app. Protected now: Login, " \
           "Withdrawal." in texts[0]
    assert "The authenticator app was disabled on your account." in texts[1]


async def test_russian_user_gets_russian_notices(start_stack: StartStack,
                                                 clock: FrozenClock) -> None:
    stack = await start_stack()
    token = await signed_in(stack, language="ru")
    await enable_totp(stack.client, token, clock)
    assert await notifications.deliver_due(stack.rt) == 1
    [mail] = notices(stack)
    assert "уведомление безопасности" in str(mail["Subject"])
    body = text_of(mail)
    assert "В вашей учётной записи включено приложение-аутентификатор." in body
    assert f"IP-адрес: {IP}" in body
    assert "обратитесь в поддержку" in body


async def test_sms_goes_to_the_verified_phone_short_and_without_links(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    await stack.enable(token, "sms", UK_MOBILE, phone=UK_MOBILE)
    codes_sent = len(stack.sms_to(UK_MOBILE))
    # Enabling SMS verified the phone in that same transaction: both are told.
    assert await queued_to(stack) == [
        ("email", EMAIL), ("sms", UK_MOBILE)]
    assert await notifications.deliver_due(stack.rt) == 2
    [sms] = stack.sms_to(UK_MOBILE)[codes_sent:]
    assert sms.startswith("StepUp Test: SMS codes were enabled on your account. Protected "
                          "now: Login. 2026-11-22 12:00 UTC, IP 203.0.113.7.")
    assert "http" not in sms and "://" not in sms
    assert IP in sms and len(sms) <= 300

    # Disabling SMS unverifies the phone, and yet the phone hears about it.
    r = await stack.manage_challenge(token, "sms")
    assert r.status_code == 202, r.text
    r = await stack.disable(token, "sms", stack.last_code("sms", UK_MOBILE))
    assert r.status_code == 200, r.text
    assert (await stack.me(token))["identities"]["phone_verified"] is False
    assert await notifications.deliver_due(stack.rt) == 2
    assert "SMS codes were disabled on your account." in stack.sms_to(UK_MOBILE)[-1]
    assert "SMS codes were disabled on your account." in text_of(notices(stack)[-1])


async def test_backup_codes_regenerated_and_running_low(start_stack: StartStack,
                                                        clock: FrozenClock) -> None:
    stack = await start_stack(backup_code_count=4)
    token = await signed_in(stack)
    codes = await enable_backup_codes(stack.client, token)
    clock.advance(1)  # one notice after the other
    # Logging in with backup codes: 3 left says nothing, 2 left warns.
    r = await verify(stack.client, await login_token(stack.client), "backup_codes", codes[0])
    assert r.status_code == 200, r.text
    assert "backup_codes.low" not in [n.kind for n in await queued(stack)]
    r = await verify(stack.client, await login_token(stack.client), "backup_codes", codes[1])
    assert r.status_code == 200, r.text
    clock.advance(1)
    assert [n.kind for n in await queued(stack)] == ["method.enabled", "backup_codes.low"]
    # Regenerating with a backup code does not warn again: the new set replaces it.
    r = await stack.client.post("/api/v1/me/methods/backup_codes/regenerate",
                                json={"code": codes[2]}, headers=auth(token))
    assert r.status_code == 201, r.text
    assert [n.kind for n in await queued(stack)][-1] == "backup_codes.regenerated"
    assert len(await queued(stack)) == 3
    assert await notifications.deliver_due(stack.rt) == 3
    texts = [text_of(m) for m in notices(stack)]
    assert "Backup codes left: 2." in texts[1]
    assert "New backup codes were created; the old ones no longer work." in texts[2]


async def test_login_from_a_new_device_is_told(start_stack: StartStack) -> None:
    home = await start_stack()
    await signed_in(home)  # sign-up and login from 203.0.113.7: a known device
    # The same network and browser: nothing to tell.
    neighbour = await start_stack(ip="203.0.113.99")
    await session_for(neighbour.client)
    assert await queued(home) == []
    # Another browser on the same network: a new device.
    r = await login(home.client, **{"User-Agent": "Mozilla/5.0 (Windows NT 10.0) "
                                                  "Firefox/128.0"})
    assert r.status_code == 200
    # Another network: a new device.
    away = await start_stack(ip="198.51.100.23")
    await session_for(away.client)
    assert [n.kind for n in await queued(home)] == ["login.new_device"] * 2
    assert await notifications.deliver_due(home.rt) == 2
    texts = " ".join(text_of(m) for m in notices(home))
    assert "Someone logged in to your account from a new device: Firefox 128, Windows." \
        in texts
    assert "IP address: 198.51.100.23" in texts
    async with home.rt.db() as db:
        q = (select(AuditEvent).where(AuditEvent.event == "login.succeeded")
             .order_by(AuditEvent.id))
        flags = [e.data.get("new_device") for e in (await db.execute(q)).scalars()]
    assert flags == [None, None, True, True]
    # Once seen, a device is known again (a browser update changes nothing).
    await session_for(away.client)
    r = await login(home.client, **{"User-Agent": "Mozilla/5.0 (Windows NT 10.0) "
                                                  "Firefox/129.0"})
    assert r.status_code == 200
    assert len(await queued(home)) == 2


async def test_method_and_account_locks_are_told(start_stack: StartStack,
                                                 clock: FrozenClock) -> None:
    stack = await start_stack(method_lock_after=3, account_lock_after=5)
    token = await signed_in(stack)
    secret = await enable_totp(stack.client, token, clock)
    lt = await login_token(stack.client)
    for _ in range(3):
        await verify(stack.client, lt, "totp", wrong_totp(secret, clock))
    assert [n.kind for n in await queued(stack)][-1] == "method.locked"
    clock.advance(61)
    for _ in range(2):
        await verify(stack.client, lt, "totp", wrong_totp(secret, clock))
    assert [n.kind for n in await queued(stack)][-1] == "account.locked"
    assert await notifications.deliver_due(stack.rt) == 3
    texts = [text_of(m) for m in notices(stack)]
    assert "The authenticator app is locked for 1 min after too many wrong attempts." in (
        texts[1])
    assert "Your account was locked for 24 h after too many failed attempts." in texts[2]


async def test_turned_off_kinds_are_not_sent_but_recovery_always_is(
        start_stack: StartStack, clock: FrozenClock) -> None:
    with pytest.raises(ValidationError, match="recovery notices cannot be turned off"):
        Settings(notifications_off=["recovery.completed"])
    # Even past the settings check (model_copy does not validate), recovery goes out.
    stack = await start_stack(notifications_off=["method.enabled", "recovery.requested"])
    token = await signed_in(stack)
    await enable_totp(stack.client, token, clock)
    await stack.enable(token, "sms", UK_MOBILE, phone=UK_MOBILE)
    backup = "jane.backup@example.net"
    await stack.enable(token, "email", backup, email=backup)
    assert await queued(stack) == []
    async with stack.rt.db() as db:
        user = await queries.get_user_by_email(db, EMAIL)
        assert user is not None
        await notifications.notify(
            stack.rt, db, user, "recovery.requested", actor=Actor(ip="192.0.2.50"),
            cancel_url="http://testserver/recovery/cancel/tok123",
            effective_at=clock.now() + timedelta(hours=24))
        await db.commit()
    # Every verified contact: the account e-mail, the phone, the e-mail method's address.
    assert await queued_to(stack) == [
        ("email", "jane.backup@example.net"), ("email", EMAIL), ("sms", UK_MOBILE)]
    assert await notifications.deliver_due(stack.rt) == 3
    mail = text_of(notices(stack)[-1])
    assert "A request to reset two-factor authentication on your account was made." in mail
    assert "http://testserver/recovery/cancel/tok123" in mail
    assert "IP address: 192.0.2.50" in mail
    sms = stack.sms_to(UK_MOBILE)[-1]
    assert "tok123" not in sms and "http" not in sms
    assert "Log in to cancel the request, or contact support." in sms
    # The cancel link is not kept once the notice is out.
    assert all("cancel_url" not in n.data for n in await queued(stack))


async def test_a_failing_mail_server_is_retried_later_then_given_up(
        start_stack: StartStack, clock: FrozenClock) -> None:
    broken = await start_stack(smtp_url=f"smtp://127.0.0.1:{closed_port()}",
                               notification_max_attempts=3)
    working = await start_stack()
    token = await signed_in(broken)
    await enable_totp(broken.client, token, clock)
    assert await notifications.deliver_due(broken.rt) == 0
    [row] = await queued(broken)
    assert row.attempts == 1 and row.sent_at is None and row.last_error
    # Not due again at once, even for a worker whose mail server works...
    assert await notifications.deliver_due(working.rt) == 0
    clock.advance(31)
    assert await notifications.deliver_due(working.rt) == 1  # ...but after the back-off.
    assert len(notices(working)) == 1
    [row] = await queued(working)
    assert row.sent_at is not None and row.attempts == 2

    # A notice that never gets through is given up after the last attempt, and audited.
    r = await broken.client.post("/api/v1/me/methods/backup_codes/enrollment",
                                 json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 201
    for wait in (0, 31, 61):
        clock.advance(wait)
        assert await notifications.deliver_due(broken.rt) == 0
    last = (await queued(broken))[-1]
    assert last.attempts == 3 and last.next_attempt_at is None and last.sent_at is None
    clock.advance(3600)
    assert await notifications.deliver_due(working.rt) == 0
    assert [e.data["kind"] for e in await broken.audit("notice.failed")] == ["method.enabled"]


async def test_two_senders_never_send_one_notice_twice(start_stack: StartStack,
                                                       clock: FrozenClock) -> None:
    a = await start_stack()
    b = await start_stack()  # another worker: its own engine and connections
    emails = [f"user{i}@example.com" for i in range(4)]
    for email in emails:
        token = await signed_in(a, email)
        await enable_backup_codes(a.client, token)
    assert len(await queued(a)) == 4
    sent = await asyncio.gather(notifications.deliver_due(a.rt),
                                notifications.deliver_due(b.rt),
                                notifications.deliver_due(a.rt))
    assert sum(sent) == 4
    assert sorted(str(m["To"]) for m in a.smtp.inbox.messages
                  if not verifies_email(m)) == sorted(emails)
    assert all(n.sent_at is not None and n.attempts == 1 for n in await queued(a))


async def test_passkey_changes_are_audited_and_told(start_stack: StartStack) -> None:
    from tests.api.test_webauthn import enrol, manage_options
    from tests.support.passkey import SoftPasskey

    stack = await start_stack()
    token = await signed_in(stack)
    passkey = SoftPasskey()
    await enrol(stack.client, token, passkey)
    r = await stack.client.post("/api/v1/me/methods/webauthn/disable", headers={
        "Authorization": f"Bearer {token}"},
        json={"code": passkey.get(await manage_options(stack.client, token))})
    assert r.status_code == 200, r.text
    assert await notifications.deliver_due(stack.rt) == 2
    # Both queued at the same (frozen) instant: sent in either order.
    texts = " | ".join(text_of(m) for m in notices(stack))
    assert "Passkeys were enabled on your account." in texts
    assert "Passkeys were disabled on your account." in texts
    assert len(notices(stack)) == 2
    async with stack.rt.db() as db:
        events = (await db.execute(select(AuditEvent.event, AuditEvent.data).where(
            AuditEvent.event.like("method.%")).order_by(AuditEvent.id))).all()
    assert [(e, d.get("method")) for e, d in events] == [
        ("method.enrollment_started", "webauthn"), ("method.enabled", "webauthn"),
        ("method.disabled", "webauthn")]
