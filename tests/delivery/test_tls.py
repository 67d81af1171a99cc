"""Calls to providers and mail servers verify their certificates, with the trust an
operator configures: one TLS context a process (``delivery.http.tls``, the SMTP
provider's default), made as httpx and the standard library make theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepup.delivery.base import OutgoingMessage, ProviderError
from stepup.delivery.smtp import SmtpProvider
from stepup.delivery.twilio import TwilioProvider
from tests.support.providers import ProviderServer
from tests.support.smtp import SmtpServer

SMS = OutgoingMessage(channel="sms", to="+447700900123", body="StepUp code: 123456")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def https() -> Iterator[ProviderServer]:
    server = ProviderServer(tls=True).start()
    yield server
    server.stop()


def _twilio(base_url: str) -> TwilioProvider:
    return TwilioProvider(account_sid="AC123", auth_token="tok", from_number="+15005550006",
                          whatsapp_from="+14155238886", base_url=base_url)


async def test_a_provider_whose_certificate_no_ca_vouches_for_is_refused(
        https: ProviderServer) -> None:
    for _ in range(2):  # the second call, with the context made by the first
        with pytest.raises(ProviderError):
            await _twilio(https.url).send(SMS)
    assert https.received == []


def test_a_ca_named_by_ssl_cert_file_is_trusted(https: ProviderServer,
                                                tmp_path: Path) -> None:
    # The process's one context is made at its first call: a process of its own, with
    # the variable an operator sets for a private CA (httpx's own default honours it).
    assert https.cert_pem is not None
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(https.cert_pem)
    script = ("import asyncio, sys\n"
              "from tests.delivery.test_tls import SMS, _twilio\n"
              "for _ in range(2):\n"
              "    print(asyncio.run(_twilio(sys.argv[1]).send(SMS)).reference)\n")
    env = {**os.environ, "SSL_CERT_FILE": str(ca_file)}
    out = subprocess.run([sys.executable, "-c", script, https.url], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split()) == 2 and len(https.received) == 2


async def test_smtp_refuses_a_certificate_no_ca_vouches_for() -> None:
    server = SmtpServer(mode="smtps").start()
    message = OutgoingMessage(channel="email", to="jane@example.com", subject="Code",
                              body="Your StepUp code is 123456")
    try:
        for _ in range(2):
            with pytest.raises(ProviderError):
                await SmtpProvider(server.url(), "no-reply@stepup.test").send(message)
    finally:
        server.stop()
    assert server.inbox.messages == []


def test_the_suites_tls_servers_leave_no_key_on_disk(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Every run of the suite starts hundreds of them; each used to leave a directory with
    # its private key in /tmp.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for server in (SmtpServer(mode="smtps"), ProviderServer(tls=True)):
        server.start().stop()
    assert list(tmp_path.iterdir()) == []
