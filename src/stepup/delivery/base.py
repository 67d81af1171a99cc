"""What every provider receives and how it fails.

A provider either returns a ``Receipt`` or raises ``ProviderError``; the error's text is
for the log and the audit trail only — users are told a plain sentence instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # sms | email | whatsapp
    to: str  # E.164 phone or e-mail address
    body: str  # plain text (SMS, WhatsApp fallback, e-mail text part)
    subject: str | None = None  # e-mail
    html: str | None = None  # e-mail HTML part
    code: str | None = None  # the security code, for template-based channels
    language: str = "en"
    purpose: str = ""


@dataclass(frozen=True)
class Receipt:
    provider: str
    reference: str | None = None


@dataclass
class ProviderError(Exception):
    provider: str
    reason: str  # for logs and audit; never shown to the user
    status: int | None = None
    retryable: bool = False
    details: dict[str, str] = field(default_factory=dict)
    #: The provider says this number or address cannot receive (a number that does not
    #: exist or is not a mobile, a refused mailbox): sending again will not help.
    invalid_destination: bool = False

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.provider}: {self.reason}{status}"


class Provider(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> Receipt: ...
