"""Out-of-band codes at the API level: the app wired to a real SMTP server (aiosmtpd) and
a real local HTTP server answering like Twilio and Meta, with only settings changed."""

from __future__ import annotations

import base64
import re
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.keyring import KeyRing
from stepup.services.runtime import Runtime
from stepup.store.models import AuditEvent, Challenge
from tests.api.helpers import PIN, auth
from tests.support.providers import ProviderServer, Received
from tests.support.smtp import SmtpServer

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret"
EMAIL_FROM = "StepUp Test <codes@stepup.test>"
TWILIO_SID, TWILIO_TOKEN = "AC1", "t"
TWILIO_FROM, TWILIO_WA_FROM = "+15005550006", "+14155238886"

RU_MOBILE = "+79161234567"
RU_MOBILE_TYPED = "+7 (916) 123-45-67"
RU_MOBILE_MASKED = "+7 *** ***-45-67"
UK_MOBILE = "+447400123456"
UK_MOBILE_MASKED = "+44 **** **3456"
UK_FIXED = "+442079460018"
EMAIL_MASKED = "j***@example.com"


def provider_settings(smtp: SmtpServer, api: ProviderServer) -> dict[str, Any]:
    """Only SMTP and Twilio settings: what an operator changes to go live."""
    return {"smtp_url": smtp.url(SMTP_USER, SMTP_PASSWORD), "email_from": EMAIL_FROM,
            "twilio_account_sid": TWILIO_SID, "twilio_auth_token": TWILIO_TOKEN,
            "twilio_from": TWILIO_FROM, "twilio_whatsapp_from": TWILIO_WA_FROM,
            "twilio_base_url": api.url}


def production_settings(base: Settings, **overrides: Any) -> Settings:
    """Settings that pass the production checks, on the test database."""
    return Settings(env="production", data_dir=base.data_dir, database_url=base.database_url,
                    keyring=KeyRing.generate_spec("k1"),
                    secret_key=base64.b64encode(b"p" * 32).decode(),
                    public_url="https://stepup.example.com", cookie_secure=True,
                    sms_provider="twilio", issuer=base.issuer, **overrides)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verifies_email(message: EmailMessage) -> bool:
    """The sign-up's message that verifies the account e-mail (its link's path)."""
    plain = message.get_body(preferencelist=("plain",))
    return plain is not None and "/email/verify/" in plain.get_content()


SMS_CODE = re.compile(r"#(\d{6})$")
ANY_CODE = re.compile(r"\b(\d{6})\b")


@dataclass
class Stack:
    client: httpx.AsyncClient
    rt: Runtime
    clock: FrozenClock
    smtp: SmtpServer
    api: ProviderServer

    # --- what the providers received ---------------------------------------------------

    def twilio(self, to: str) -> list[Received]:
        return [r for r in self.api.received
                if r.path.endswith("/Messages.json") and r.form.get("To") == to]

    def sms_to(self, number: str) -> list[str]:
        return [r.form["Body"] for r in self.twilio(number)]

    def whatsapp_to(self, number: str) -> list[str]:
        return [r.form["Body"] for r in self.twilio(f"whatsapp:{number}")]

    def mail_to(self, address: str) -> list[EmailMessage]:
        """The codes and notices sent to ``address`` — not the message that verifies the
        account e-mail, which every account gets at sign-up (test_email_verification)."""
        return [m for m in self.smtp.inbox.messages if m["To"] == address
                and not verifies_email(m)]

    def last_code(self, channel: str, to: str) -> str:
        if channel == "sms":
            bodies = self.sms_to(to)
            assert bodies, f"no SMS to {to}"
            m = SMS_CODE.search(bodies[-1])
        elif channel == "whatsapp":
            bodies = self.whatsapp_to(to)
            assert bodies, f"no WhatsApp message to {to}"
            m = ANY_CODE.search(bodies[-1])
        else:
            mails = self.mail_to(to)
            assert mails, f"no e-mail to {to}"
            plain = mails[-1].get_body(preferencelist=("plain",))
            assert plain is not None
            m = ANY_CODE.search(plain.get_content())
        assert m, f"no code in the last {channel} message to {to}"
        return m.group(1)

    def sent_count(self) -> int:
        """Messages sent, but the sign-ups' e-mail verifications."""
        return len(self.api.received) + len([m for m in self.smtp.inbox.messages
                                             if not verifies_email(m)])

    # --- API steps ---------------------------------------------------------------------

    async def enroll(self, token: str, channel: str, *, pin: str = PIN,
                     **params: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/me/methods/{channel}/enrollment",
                                      json={"pin": pin, **params}, headers=auth(token))

    async def confirm(self, token: str, channel: str, code: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/me/methods/{channel}/enrollment/confirm",
                                      json={"code": code}, headers=auth(token))

    async def enable(self, token: str, channel: str, to: str, **params: str
                     ) -> dict[str, Any]:
        r = await self.enroll(token, channel, **params)
        assert r.status_code == 202, r.text
        r = await self.confirm(token, channel, self.last_code(channel, to))
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is True
        return dict(r.json())

    async def manage_challenge(self, token: str, channel: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/me/methods/{channel}/challenge",
                                      headers=auth(token))

    async def switch(self, token: str, channel: str, code: str, **protects: bool
                     ) -> httpx.Response:
        return await self.client.patch(f"/api/v1/me/methods/{channel}",
                                       json={"protects": protects, "code": code},
                                       headers=auth(token))

    async def disable(self, token: str, channel: str, code: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/me/methods/{channel}/disable",
                                      json={"code": code}, headers=auth(token))

    async def login_challenge(self, login_token: str, channel: str) -> httpx.Response:
        return await self.client.post("/api/v1/login/challenge",
                                      json={"login_token": login_token, "method": channel})

    async def me(self, token: str) -> dict[str, Any]:
        r = await self.client.get("/api/v1/me", headers=auth(token))
        assert r.status_code == 200, r.text
        return dict(r.json())

    # --- what the store holds ----------------------------------------------------------

    async def audit(self, event: str) -> list[AuditEvent]:
        """The events named ``event``, but those of the sign-ups' e-mail verification."""
        async with self.rt.db() as db:
            q = select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)
            return [e for e in (await db.execute(q)).scalars().all()
                    if (e.data or {}).get("purpose") != "verify:email"]

    async def codes(self) -> list[Challenge]:
        """The challenges, but the sign-ups' e-mail verification (its code and link)."""
        async with self.rt.db() as db:
            q = select(Challenge).where(Challenge.purpose != "verify:email")
            return list((await db.execute(q)).scalars().all())
