"""What every provider receives and how it fails.

A provider either returns a ``Receipt`` or raises ``ProviderError``; the error's text is
for the log and the audit trail only — users are told a plain sentence instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stepup.config import Settings


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # the type of the method that sends it (sms, email, …)
    to: str  # E.164 phone or e-mail address
    body: str  # plain text (SMS, a chat message, the e-mail text part)
    subject: str | None = None  # e-mail
    html: str | None = None  # e-mail HTML part
    code: str | None = None  # the security code, for template-based channels
    language: str = "en"
    purpose: str = ""
    #: Our id of the code (the provider hands it back in a delivery report).
    reference: str | None = None
    #: How long the code is valid: a provider that can let the message expire uses it.
    ttl_seconds: int | None = None


# The longest subject line StepUp writes (a long app name or method name could make it
# longer); mail clients show far less anyway.
SUBJECT_MAX = 150


def subject_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """``text`` as a subject of at most ``limit`` characters: cut at the last space that
    keeps it within the limit, never inside a word, and ended with an ellipsis; a single
    word longer than the limit (an address, a long name) is cut where it must be."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = text[:limit - 1]  # the ellipsis takes the last place
    head = room.rsplit(" ", 1)[0] if " " in room and text[limit - 1] != " " else room
    # Words that end the cut part mid-sentence: no dangling colon, comma or dash.
    head = head.rstrip(" ,;:-—–")
    return (head or room) + "…"


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


#: Builds the provider of a channel from the settings, given the development outbox
#: (None in production); None when nothing is configured for the channel. A method that
#: sends codes names its factory in its descriptor (``Descriptor.provider``).
ProviderFactory = Callable[["Settings", Provider | None], Provider | None]


@dataclass(frozen=True)
class DeliveryReport:
    """What a provider told us, later, about a message it carried."""

    provider: str
    status: str  # the provider's word: sent, delivered, read, expired, revoked, …
    reference: str | None = None  # ours (OutgoingMessage.reference): the code's id
    provider_reference: str | None = None  # the provider's id of the message


class ReportRefused(Exception):
    """A delivery report that cannot be trusted: a bad or stale signature, a bad body.
    The text is for the log only."""


@runtime_checkable
class ReportsDelivery(Protocol):
    """An ability: the provider posts delivery reports to ``/hooks/delivery/{name}``,
    signed so that only it can; ``delivery_report`` checks and reads one."""

    name: str

    def delivery_report(self, headers: Mapping[str, str], body: bytes, now: datetime
                        ) -> DeliveryReport:
        """The report, or ReportRefused. ``headers`` have lower-case names."""
        ...
