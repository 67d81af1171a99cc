"""E-mail over SMTP: ``smtp://`` (optionally ``?starttls=1``) or ``smtps://``, with AUTH
when the URL carries a user. Plain-text and HTML parts. smtplib runs in a thread with a
5-second timeout, so the event loop never waits on the mail server."""

from __future__ import annotations

import functools
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlparse

import anyio.to_thread

from stepup.delivery.base import OutgoingMessage, ProviderError, Receipt

TIMEOUT = 5.0


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's CAs, certificates and host names verified: made once a process, as
    loading the CA store costs ~15 ms (a runtime built per test made one each)."""
    return ssl.create_default_context()


class SmtpProvider:
    name = "smtp"

    def __init__(self, url: str, sender: str, *, ssl_context: ssl.SSLContext | None = None
                 ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError("STEPUP_SMTP_URL must start with smtp:// or smtps://")
        self._implicit_tls = parsed.scheme == "smtps"
        query = parse_qs(parsed.query)
        self._starttls = query.get("starttls", ["0"])[0] in ("1", "true", "yes")
        self._host = parsed.hostname or "localhost"
        self._port = parsed.port or (465 if self._implicit_tls else 25)
        self._user = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        self._sender = sender
        self._ssl = ssl_context or _default_tls()

    def build(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2].strip(">")
                                        or None)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def _send_sync(self, mail: EmailMessage) -> None:
        smtp: smtplib.SMTP
        if self._implicit_tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=TIMEOUT, context=self._ssl)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if self._starttls:
                smtp.starttls(context=self._ssl)
                smtp.ehlo()
            if self._user:
                smtp.login(self._user, self._password or "")
            smtp.send_message(mail)

    async def send(self, message: OutgoingMessage) -> Receipt:
        mail = self.build(message)
        for attempt in (1, 2):
            try:
                await anyio.to_thread.run_sync(self._send_sync, mail)
                return Receipt(self.name, str(mail["Message-ID"]))
            except (ConnectionRefusedError, smtplib.SMTPConnectError) as exc:
                if attempt == 2:
                    raise ProviderError(self.name, f"cannot connect: {exc!r}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                # A 5xx for the recipient is the mailbox refusing for good; 4xx is a
                # temporary refusal (greylisting, full mailbox).
                codes = [code for code, _ in exc.recipients.values()]
                raise ProviderError(self.name, f"recipient refused: {codes}",
                                    status=codes[0] if codes else None,
                                    invalid_destination=all(c >= 500 for c in codes)
                                    ) from exc
            except smtplib.SMTPResponseException as exc:
                raise ProviderError(self.name, f"refused: {exc.smtp_code} {exc.smtp_error!r}",
                                    status=exc.smtp_code) from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise ProviderError(self.name, f"failed: {exc!r}") from exc
        raise AssertionError("unreachable")
