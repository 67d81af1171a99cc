"""Providers against real local servers that answer like Twilio, Meta and SMTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from stepup.delivery.base import OutgoingMessage, ProviderError
from stepup.delivery.meta import MetaWhatsAppProvider
from stepup.delivery.smtp import SmtpProvider
from stepup.delivery.twilio import TwilioProvider
from tests.support.providers import ProviderServer, Scripted
from tests.support.smtp import SmtpServer

SMS = OutgoingMessage(channel="sms", to="+447700900123", body="StepUp code: 123456",
                      code="123456")
WA = OutgoingMessage(channel="whatsapp", to="+447700900123", body="StepUp code: 123456",
                     code="123456", language="ru")


@pytest.fixture
def api() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


def twilio(api: ProviderServer) -> TwilioProvider:
    return TwilioProvider(account_sid="AC123", auth_token="tok", from_number="+15005550006",
                          whatsapp_from="+14155238886", base_url=api.url)


async def test_twilio_sms_is_a_form_post_with_basic_auth(api: ProviderServer) -> None:
    receipt = await twilio(api).send(SMS)
    (req,) = api.received
    assert req.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert req.basic_auth == ("AC123", "tok")
    assert req.form == {"To": "+447700900123", "From": "+15005550006",
                        "Body": "StepUp code: 123456"}
    assert receipt.reference and receipt.reference.startswith("SM")


async def test_twilio_whatsapp_uses_whatsapp_addresses(api: ProviderServer) -> None:
    await twilio(api).send(WA)
    assert api.received[0].form["To"] == "whatsapp:+447700900123"
    assert api.received[0].form["From"] == "whatsapp:+14155238886"


async def test_twilio_4xx_is_an_error_and_never_retried(api: ProviderServer) -> None:
    api.script.append(ProviderServer.twilio_error(400, 21211, "The 'To' number is not valid"))
    with pytest.raises(ProviderError) as info:
        await twilio(api).send(SMS)
    assert info.value.status == 400 and "21211" in str(info.value)
    assert len(api.received) == 1


async def test_twilio_5xx_is_an_error(api: ProviderServer) -> None:
    api.script.append(Scripted(503, {"message": "Service unavailable"}))
    with pytest.raises(ProviderError) as info:
        await twilio(api).send(SMS)
    assert info.value.status == 503
    assert len(api.received) == 1


async def test_a_slow_provider_times_out_after_5_seconds_without_retry(
        api: ProviderServer) -> None:
    api.script.append(Scripted(201, {"sid": "SMlate"}, delay=6.5))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await twilio(api).send(SMS)
    assert 4.5 < time.monotonic() - started < 6.5
    assert "5 s" in info.value.reason
    assert len(api.received) == 1  # the provider may have it: no second send


async def test_an_unreachable_provider_is_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = TwilioProvider(account_sid="AC1", auth_token="t", from_number="+1500",
                              whatsapp_from=None, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as info:
        await provider.send(SMS)
    assert "cannot connect" in info.value.reason


async def test_meta_sends_the_authentication_template(api: ProviderServer) -> None:
    provider = MetaWhatsAppProvider(access_token="EAAB", phone_number_id="1055",
                                    template="stepup_code", base_url=api.url)
    receipt = await provider.send(WA)
    (req,) = api.received
    assert req.path == "/1055/messages"
    assert req.headers["authorization"] == "Bearer EAAB"
    body = req.json
    assert body["to"] == "447700900123" and body["type"] == "template"
    assert body["template"]["name"] == "stepup_code"
    assert body["template"]["language"] == {"code": "ru"}
    params = [c["parameters"][0]["text"] for c in body["template"]["components"]]
    assert params == ["123456", "123456"]
    assert receipt.reference == "wamid.1"


async def test_meta_error_body_is_reported(api: ProviderServer) -> None:
    api.script.append(ProviderServer.meta_error(400, 131026, "Message undeliverable"))
    provider = MetaWhatsAppProvider(access_token="x", phone_number_id="1", template="t",
                                    base_url=api.url)
    with pytest.raises(ProviderError) as info:
        await provider.send(WA)
    assert "131026" in str(info.value) and info.value.details["fbtrace_id"] == "AbCdEf"


EMAIL = OutgoingMessage(channel="email", to="jane@example.com", subject="Your code",
                        body="Your StepUp code is 123456", html="<p>Your code is <b>123456</b></p>")


@pytest.mark.parametrize("mode", ["plain", "starttls", "smtps"])
async def test_smtp_delivers_text_and_html_with_auth(mode: str) -> None:
    server = SmtpServer(mode=mode, user="mailer", password="s3cret").start()
    try:
        provider = SmtpProvider(server.url("mailer", "s3cret"), "StepUp <no-reply@stepup.test>",
                                ssl_context=server.client_context)
        await provider.send(EMAIL)
    finally:
        server.stop()
    (msg,) = server.inbox.messages
    assert msg["To"] == "jane@example.com" and msg["Subject"] == "Your code"
    assert msg["From"] == "StepUp <no-reply@stepup.test>"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and "123456" in plain.get_content()
    assert html is not None and "<b>123456</b>" in html.get_content()


async def test_smtp_wrong_password_is_an_error() -> None:
    server = SmtpServer(mode="starttls", user="mailer", password="s3cret").start()
    try:
        provider = SmtpProvider(server.url("mailer", "wrong"), "no-reply@stepup.test",
                                ssl_context=server.client_context)
        with pytest.raises(ProviderError) as info:
            await provider.send(EMAIL)
    finally:
        server.stop()
    assert info.value.status == 535
    assert server.inbox.messages == []


async def test_smtp_unreachable_is_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = SmtpProvider(f"smtp://127.0.0.1:{port}", "no-reply@stepup.test")
    with pytest.raises(ProviderError) as info:
        await provider.send(EMAIL)
    assert "cannot connect" in info.value.reason
