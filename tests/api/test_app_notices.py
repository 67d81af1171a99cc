"""Security notices that speak for the portal: a user of an app hears from that app (its
display name, and its address in e-mails) and is never told about a StepUp account or
password they do not have; StepUp's own users read the texts they always did; an app
that turned notices off gets none queued for its users but the recovery notices, and
its webhook gets the events instead. Real SMTP server and Twilio stand-in."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from stepup.services import apikeys, apps, notifications, webhooks
from stepup.services.runtime import Actor
from stepup.store.models import NotificationQueue, WebhookDelivery
from tests.api.conftest import StartStack
from tests.api.helpers import PASSWORD, PIN, auth, enable_totp, session_for
from tests.api.oob_support import UK_MOBILE, Stack
from tests.api.ops_support import totp_on_behalf

EMAIL = "jane@example.com"
ACTOR = Actor(name="test")
END_USER = {"StepUp-End-User-IP": "198.51.100.23"}


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def notices(stack: Stack, to: str = EMAIL) -> list[EmailMessage]:
    return [m for m in stack.mail_to(to) if "security notice" in str(m["Subject"])
            or "уведомление безопасности" in str(m["Subject"])]


def everything(mail: EmailMessage) -> str:
    return f"{mail['Subject']}\n{text_of(mail)}\n{html_of(mail)}"


async def acme_key(stack: Stack, **settings: object) -> str:
    await apps.create(stack.rt, ACTOR, "acme", display_name="Acme Broker",
                      url="https://acme.example")
    if settings:
        await apps.configure(stack.rt, ACTOR, "acme", **settings)  # type: ignore[arg-type]
    _row, key = await apikeys.create(stack.rt, "acme", "app", ACTOR, app="acme")
    return key


async def app_user(stack: Stack, key: str, language: str = "en") -> str:
    r = await stack.client.post("/api/v1/users", json={
        "email": EMAIL, "external_id": "client-1", "pin": PIN, "language": language},
        headers=auth(key))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def enable_sms(stack: Stack, key: str, uid: str) -> None:
    base = f"/api/v1/users/{uid}/methods/sms/enrollment"
    r = await stack.client.post(base, json={"phone": UK_MOBILE},
                                headers={**auth(key), **END_USER})
    assert r.status_code == 202, r.text
    r = await stack.client.post(f"{base}/confirm",
                                json={"code": stack.last_code("sms", UK_MOBILE)},
                                headers={**auth(key), **END_USER})
    assert r.status_code == 200, r.text


async def file_recovery(stack: Stack, key: str, uid: str) -> None:
    r = await stack.client.post(f"/api/v1/users/{uid}/recovery", json={
        "description": "Lost my phone", "contact": {"channel": "email"}},
        headers={**auth(key), **END_USER})
    assert r.status_code == 201, r.text


async def queued(stack: Stack) -> list[NotificationQueue]:
    async with stack.rt.db() as db:
        q = select(NotificationQueue).order_by(NotificationQueue.created_at,
                                               NotificationQueue.id)
        return list((await db.execute(q)).scalars().all())


async def test_an_apps_user_hears_from_the_app(start_stack: StartStack) -> None:
    stack = await start_stack()
    key = await acme_key(stack)
    uid = await app_user(stack, key)
    await enable_sms(stack, key, uid)
    await file_recovery(stack, key, uid)
    assert await notifications.deliver_due(stack.rt) == 4  # enabled and requested, ×2
    mails = notices(stack)
    assert len(mails) == 2
    for mail in mails:
        assert str(mail["Subject"]).strip().startswith("Acme Broker security notice:")
        whole = everything(mail)
        assert "This is a security notice from Acme Broker (https://acme.example)." in whole
        assert "StepUp" not in whole and "password" not in whole.lower()
        assert "your account with Acme Broker" in text_of(mail)
    # Queued at the same (frozen) instant: sent in either order.
    [enabled] = [text_of(m) for m in mails if "enabled" in text_of(m)]
    [requested] = [text_of(m) for m in mails if "request to reset" in text_of(m)]
    assert "SMS codes were enabled on your account." in enabled
    assert "If this was not you, contact Acme Broker at once to secure your account." in enabled
    assert "IP address: 198.51.100.23" in enabled
    assert "/recovery/cancel/" in requested and "then contact Acme Broker." in requested

    sms = [b for b in stack.sms_to(UK_MOBILE) if "security code" not in b]
    assert len(sms) == 2
    for body in sms:
        assert body.startswith("Acme Broker: ")
        assert "StepUp" not in body and "password" not in body.lower()
        assert "http" not in body  # no link in an SMS, not even the app's
    assert sorted(b.rsplit(". ", 1)[1] for b in sms) == [
        "Not you? Contact Acme Broker at once to stop the request.",
        "Not you? Contact Acme Broker at once."]


async def test_in_russian_too(start_stack: StartStack) -> None:
    stack = await start_stack()
    key = await acme_key(stack)
    uid = await app_user(stack, key, language="ru")
    await enable_sms(stack, key, uid)
    assert await notifications.deliver_due(stack.rt) == 2
    [mail] = notices(stack)
    assert str(mail["Subject"]).strip().startswith("Acme Broker, уведомление безопасности:")
    body = text_of(mail)
    assert "Это уведомление безопасности от Acme Broker (https://acme.example)." in body
    assert "немедленно обратитесь в поддержку Acme Broker" in body
    assert "учётной записи в Acme Broker" in body
    assert "StepUp" not in everything(mail) and "пароль" not in everything(mail)
    [sms] = [b for b in stack.sms_to(UK_MOBILE) if "Это не вы?" in b]
    assert sms.startswith("Acme Broker: ")
    assert sms.endswith("Это не вы? Немедленно обратитесь в поддержку Acme Broker.")


async def test_stepups_own_users_read_what_they_always_did(start_stack: StartStack
                                                           ) -> None:
    stack = await start_stack()
    await acme_key(stack)  # another app changes nothing for them
    r = await stack.client.post("/api/v1/accounts", json={
        "email": EMAIL, "password": PASSWORD, "pin": PIN})
    assert r.status_code == 201, r.text
    token = await session_for(stack.client, EMAIL)
    await enable_totp(stack.client, token, stack.clock)
    assert await notifications.deliver_due(stack.rt) == 1
    [mail] = notices(stack)
    assert str(mail["Subject"]).strip().startswith("StepUp Test security notice:")
    body = text_of(mail)
    assert body.startswith("This is a security notice from StepUp Test.\r\n")
    assert "If this was not you, secure your account: change your password, check your " \
           "authentication methods and contact support." in body
    assert "concerns the security of your StepUp Test account." in body
    assert "Acme" not in everything(mail)


@pytest.mark.parametrize("hooked", [False, True])
async def test_notices_off_leaves_only_the_recovery_notices(start_stack: StartStack,
                                                             hooked: bool) -> None:
    stack = await start_stack()
    hook = {"webhook_url": f"{stack.api.url}/hooks", "webhook_secret": "x" * 20} if hooked \
        else {}
    key = await acme_key(stack, notices=False, **hook)
    uid = await app_user(stack, key)
    await totp_on_behalf(stack.client, key, uid, stack.clock)
    await enable_sms(stack, key, uid)
    assert await queued(stack) == []
    await file_recovery(stack, key, uid)
    rows = await queued(stack)
    assert {r.kind for r in rows} == {"recovery.requested"}
    assert sorted(r.channel for r in rows) == ["email", "sms"]
    assert await notifications.deliver_due(stack.rt) == 2
    [mail] = notices(stack)
    assert "A request to reset two-factor authentication" in text_of(mail)
    # The portal hears the events instead (when it set a webhook).
    async with stack.rt.db() as db:
        events = [d.event for d in (await db.execute(
            select(WebhookDelivery).order_by(WebhookDelivery.created_at))).scalars()]
    if hooked:
        assert sorted(events) == ["method.enabled", "method.enabled", "recovery.requested"]
        assert await webhooks.deliver_due(stack.rt) == 3
    else:
        assert events == []


async def test_codes_and_the_authenticator_label_name_the_app(start_stack: StartStack
                                                              ) -> None:
    """The code SMS and the authenticator app's label come from the portal the user
    knows; the SMS's autofill line names the portal's host, where the code is typed."""
    stack = await start_stack()
    key = await acme_key(stack)
    uid = await app_user(stack, key)
    await enable_sms(stack, key, uid)
    first, *_, last = stack.sms_to(UK_MOBILE)[0].splitlines()
    assert first.startswith("Acme Broker: ") and "StepUp" not in first
    assert last.startswith("@acme.example #")
    r = await stack.client.post(f"/api/v1/users/{uid}/methods/totp/enrollment", json={},
                                headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/Acme%20Broker:jane%40example.com?")
    assert "issuer=Acme%20Broker" in r.json()["otpauth_uri"]
