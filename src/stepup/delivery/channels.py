"""Which provider carries each channel, chosen by configuration.

A method that sends codes names, in its descriptor, the factory that builds its provider
from the settings (the functions below for SMS, e-mail and WhatsApp); ``Delivery`` asks
every such method of the registry, so a new channel adds nothing here. With nothing
configured in development, every channel goes to the outbox; in production a channel
without a provider fails clearly instead (and says so in the log at start).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepup.config import Settings
from stepup.delivery.base import (
    OutgoingMessage,
    Provider,
    ProviderError,
    Receipt,
    ReportsDelivery,
)
from stepup.delivery.meta import MetaWhatsAppProvider
from stepup.delivery.outbox import OutboxProvider
from stepup.delivery.smtp import SmtpProvider
from stepup.delivery.twilio import TwilioProvider
from stepup.domain.clock import Clock

log = logging.getLogger("stepup.delivery")


def _twilio(s: Settings) -> TwilioProvider | None:
    if not (s.twilio_account_sid and s.twilio_auth_token):
        return None
    return TwilioProvider(account_sid=s.twilio_account_sid, auth_token=s.twilio_auth_token,
                          from_number=s.twilio_from, whatsapp_from=s.twilio_whatsapp_from,
                          base_url=s.twilio_base_url)


def sms_provider(s: Settings, outbox: Provider | None) -> Provider | None:
    choice = s.sms_provider
    if choice == "outbox":
        return outbox
    if choice == "twilio" or (choice is None and s.twilio_from):
        return _twilio(s)
    return outbox


def whatsapp_provider(s: Settings, outbox: Provider | None) -> Provider | None:
    choice = s.whatsapp_provider
    if choice == "outbox":
        return outbox
    if choice == "meta":
        if not (s.meta_access_token and s.meta_phone_number_id):
            return None
        return MetaWhatsAppProvider(access_token=s.meta_access_token,
                                    phone_number_id=s.meta_phone_number_id,
                                    template=s.meta_template, base_url=s.meta_base_url)
    if choice == "twilio" or (choice is None and s.twilio_whatsapp_from):
        return _twilio(s)
    return outbox


def email_provider(s: Settings, outbox: Provider | None) -> Provider | None:
    if s.smtp_url:
        return SmtpProvider(s.smtp_url, s.email_from)
    return outbox


class Delivery:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                 clock: Clock) -> None:
        # Imported here: the methods' packages import the factories above.
        from stepup.methods import registry

        self._settings = settings
        self._outbox = OutboxProvider(sessionmaker, clock)
        outbox = None if settings.is_production else self._outbox
        self._providers: dict[str, Provider | None] = {
            d.type: d.provider(settings, outbox)
            for d in registry.sending_codes() if d.provider is not None}
        for channel, provider in self._providers.items():
            if provider is None and settings.is_production:
                log.warning("no provider is configured for %s: its codes cannot be sent "
                            "(docs/deployment.md)", channel)

    def provider_name(self, channel: str) -> str | None:
        provider = self._providers.get(channel)
        return provider.name if provider else None

    def reporting(self, name: str) -> ReportsDelivery | None:
        """The configured provider called ``name`` that posts delivery reports, if any."""
        for provider in self._providers.values():
            if isinstance(provider, ReportsDelivery) and provider.name == name:
                return provider
        return None

    async def send(self, message: OutgoingMessage) -> Receipt:
        provider = self._providers.get(message.channel)
        if provider is None:
            raise ProviderError("none", f"no provider is configured for {message.channel}")
        try:
            return await provider.send(message)
        except ProviderError as exc:
            log.warning("delivery failed: %s", exc)
            raise
