"""The localised text of every message we send.

Each message names the service and what the code is for, keeps the code easy to find,
and carries no link in SMS. A withdrawal's destination is always written whole. SMS ends
with the ``@host #code`` line that Android and iOS read to offer the code for autofill
(WebOTP / domain-bound codes).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from stepup import formats
from stepup.delivery.base import OutgoingMessage
from stepup.i18n import gettext

if TYPE_CHECKING:
    from stepup.methods.base import Descriptor


def _descriptor(method_type: str) -> Descriptor | None:
    # Imported here: the methods that send codes import this module.
    from stepup.methods import registry

    return registry.descriptor(method_type)


def method_sentence(language: str, method_type: str, key: str) -> str:
    """The method's own whole sentence for ``key`` (its descriptor's ``sentences``),
    translated: "to enable SMS codes" is worded per method, never spliced."""
    from stepup.methods.base import sentence

    text, generic = sentence(_descriptor(method_type), key)
    translated = gettext(language, text)
    return translated % {"method": gettext(language, channel_name(method_type))} if (
        generic) else translated


def channel_name(method_type: str) -> str:
    """The untranslated name of a method's codes ("e-mail codes"), from its descriptor."""
    d = _descriptor(method_type)
    return (d.channel_name or d.notice_name) if d is not None else method_type


def message_format(channel: str) -> str:
    """The shape of the channel's code message, as its method's descriptor says."""
    d = _descriptor(channel)
    return (d.message_format if d is not None else None) or "mail"


def billed_channels() -> str:
    """The channels billed per message, in English ("SMS and WhatsApp"): the ones the
    operator's hourly budget counts, as its warnings and refusals name them."""
    from stepup.methods import registry

    words = [d.channel_word or d.type for d in registry.sending_codes() if d.billed]
    return " and ".join(filter(None, [", ".join(words[:-1]), *words[-1:]]))


def billed(channel: str) -> bool:
    """Each message of this channel is billed (its method's descriptor says)."""
    d = _descriptor(channel)
    return d is not None and d.billed


def purpose_text(language: str, purpose: str, details: dict[str, str] | None = None) -> str:
    _ = lambda m: gettext(language, m)  # noqa: E731
    kind, _sep, arg = purpose.partition(":")
    if kind == "login":
        return _("to log in")
    if kind == "enroll":
        return method_sentence(language, arg, "to_enable")
    if kind == "manage":
        return method_sentence(language, arg, "to_manage")
    if purpose == "account:pin":
        return _("to change your PIN")
    if kind == "operation" and details and not {"amount", "currency", "destination"} <= set(
            details):
        return _("to confirm: %(summary)s") % {"summary": details.get("summary", "")}
    if kind == "operation" and details:
        return _("to confirm the withdrawal of %(amount)s %(currency)s to %(destination)s") % {
            # The amount as the language writes numbers ("1 234,50" in Russian).
            "amount": formats.amount(details.get("amount", ""), details.get("currency"),
                                     language),
            "currency": details.get("currency", ""),
            # Whole: a shortened "bc1qar…5mdq" is matched by a vanity address.
            "destination": details.get("destination", "")}
    return _("to confirm an operation")


def code_message(*, channel: str, to: str, code: str, purpose: str, language: str,
                 issuer: str, public_url: str, ttl_minutes: int,
                 details: dict[str, str] | None = None, reference: str | None = None,
                 ttl_seconds: int | None = None) -> OutgoingMessage:
    """The code's message; ``reference`` is our id of the code (a provider's delivery
    report names it), ``ttl_seconds`` how long the code is valid, for the provider."""
    _ = lambda m: gettext(language, m)  # noqa: E731
    what = purpose_text(language, purpose, details)
    values = {"issuer": issuer, "code": code, "what": what, "minutes": ttl_minutes}

    def message(body: str, subject: str | None = None, html: str | None = None
                ) -> OutgoingMessage:
        return OutgoingMessage(channel, to, body, subject=subject, html=html, code=code,
                               language=language, purpose=purpose, reference=reference,
                               ttl_seconds=ttl_seconds)

    line = _("%(issuer)s: %(code)s is your security code %(what)s.") % values
    warn = _("It expires in %(minutes)s minutes. Never share it, not even with our support.") % (
        values)
    host = urlparse(public_url).hostname or "localhost"
    shape = message_format(channel)
    if shape == "text":
        body = f"{line}\n{warn}\n\n@{host} #{code}"
        return message(body)
    if shape == "chat":
        return message(f"{line}\n{warn}")
    subject = _("%(issuer)s security code %(what)s") % values
    ignore = _("If you did not ask for this code, someone may know your password: change "
               "it and contact support.")
    text = f"{line}\n\n    {code}\n\n{warn}\n\n{ignore}\n"
    html = (f"<p>{escape(line)}</p><p><strong style=\"font-size:1.6em;letter-spacing:.2em\">"
            f"{escape(code)}</strong></p><p>{escape(warn)}</p><p>{escape(ignore)}</p>")
    return message(text, subject, html)
