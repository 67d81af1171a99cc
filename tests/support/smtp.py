"""A real SMTP server (aiosmtpd) for the tests: plain, STARTTLS, SMTPS and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import free_port


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    # Mailboxes this server refuses for good (550), as a real one refuses an address
    # that does not exist.
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content,
                                 policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key, in memory only: the files
    ``ssl`` needs exist while it loads them (a run of the suite left a directory with a
    private key behind for every server it started)."""

    pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="stepup-cert-") as d:
            cert, key = Path(d, "cert.pem"), Path(d, "key.pem")
            cert.write_bytes(self.pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


def self_signed(host: str = "127.0.0.1") -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stepup-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    return Certificate(cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


class SmtpServer:
    def __init__(self, *, mode: str = "plain", user: str | None = None,
                 password: str | None = None) -> None:
        self.inbox = Inbox()
        self.mode = mode
        certificate = self_signed()
        self.cert_pem = certificate.pem
        server_ctx = certificate.server_context()
        self.client_context = ssl.create_default_context(cadata=self.cert_pem.decode())
        kwargs: dict[str, Any] = {}
        if user:
            def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                              auth_data: Any) -> AuthResult:
                ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                      and auth_data.password == (password or "").encode())
                return AuthResult(success=ok, handled=False)
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=mode == "starttls")
        if mode == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        if mode == "smtps":
            kwargs.update(ssl_context=server_ctx)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=free_port(),
                                     **kwargs)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        scheme = "smtps" if self.mode == "smtps" else "smtp"
        cred = f"{user}:{password}@" if user else ""
        q = "?starttls=1" if self.mode == "starttls" else ""
        return f"{scheme}://{cred}127.0.0.1:{self.port}{q}"
