"""Which provider carries each channel, chosen by configuration.

With nothing configured in development, every channel goes to the outbox; in
production a channel without a provider fails clearly instead.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepup.config import Settings
from stepup.delivery.base import OutgoingMessage, Provider, ProviderError, Receipt
from stepup.delivery.meta import MetaWhatsAppProvider
from stepup.delivery.outbox import OutboxProvider
from stepup.delivery.smtp import SmtpProvider
from stepup.delivery.twilio import TwilioProvider
from stepup.domain.clock import Clock

log = logging.getLogger("stepup.delivery")


class Delivery:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                 clock: Clock) -> None:
        self._settings = settings
        self._outbox = OutboxProvider(sessionmaker, clock)
        self._providers: dict[str, Provider | None] = {
            "sms": self._sms(), "email": self._email(), "whatsapp": self._whatsapp()}

    def _dev_outbox(self) -> Provider | None:
        return None if self._settings.is_production else self._outbox

    def _twilio(self) -> TwilioProvider | None:
        s = self._settings
        if not (s.twilio_account_sid and s.twilio_auth_token):
            return None
        return TwilioProvider(account_sid=s.twilio_account_sid, auth_token=s.twilio_auth_token,
                              from_number=s.twilio_from, whatsapp_from=s.twilio_whatsapp_from,
                              base_url=s.twilio_base_url)

    def _sms(self) -> Provider | None:
        choice = self._settings.sms_provider
        if choice == "outbox":
            return self._dev_outbox()
        if choice == "twilio" or (choice is None and self._settings.twilio_from):
            return self._twilio()
        return self._dev_outbox()

    def _whatsapp(self) -> Provider | None:
        s = self._settings
        choice = s.whatsapp_provider
        if choice == "outbox":
            return self._dev_outbox()
        if choice == "meta":
            if not (s.meta_access_token and s.meta_phone_number_id):
                return None
            return MetaWhatsAppProvider(access_token=s.meta_access_token,
                                        phone_number_id=s.meta_phone_number_id,
                                        template=s.meta_template, base_url=s.meta_base_url)
        if choice == "twilio" or (choice is None and s.twilio_whatsapp_from):
            return self._twilio()
        return self._dev_outbox()

    def _email(self) -> Provider | None:
        if self._settings.smtp_url:
            return SmtpProvider(self._settings.smtp_url, self._settings.email_from)
        return self._dev_outbox()

    def provider_name(self, channel: str) -> str | None:
        provider = self._providers.get(channel)
        return provider.name if provider else None

    async def send(self, message: OutgoingMessage) -> Receipt:
        provider = self._providers.get(message.channel)
        if provider is None:
            raise ProviderError("none", f"no provider is configured for {message.channel}")
        try:
            return await provider.send(message)
        except ProviderError as exc:
            log.warning("delivery failed: %s", exc)
            raise
