"""The Telegram Gateway provider against a real local server that answers like the
Gateway API (core.telegram.org/gateway/api), and its delivery reports' signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from stepup.config import Settings
from stepup.delivery.base import OutgoingMessage, ProviderError, ReportRefused
from stepup.delivery.telegram import TelegramGatewayProvider, telegram_provider
from tests.support.providers import ProviderServer, Scripted

TOKEN = "AAGb-gateway-token"
PHONE = "+447700900123"
CODE_ID = "c0de1d"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MESSAGE = OutgoingMessage(channel="telegram", to=PHONE, body="StepUp: 123456 is your code.",
                          code="123456", language="ru", reference=CODE_ID, ttl_seconds=300)


class Gateway(ProviderServer):
    """Answers sendVerificationMessage with a RequestStatus unless scripted otherwise."""

    def default(self, path: str) -> Scripted:
        return Scripted(200, {"ok": True, "result": {
            "request_id": f"req{len(self.received)}", "phone_number": PHONE.lstrip("+"),
            "request_cost": 0.01, "remaining_balance": 9.99,
            "delivery_status": {"status": "sent", "updated_at": 1}}})

    @staticmethod
    def error(error: str, status: int = 400) -> Scripted:
        return Scripted(status, {"ok": False, "error": error})


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway().start()
    yield server
    server.stop()


def provider(gateway: Gateway, callback: str | None = "https://mfa.example.com/hooks/"
             "delivery/telegram") -> TelegramGatewayProvider:
    return TelegramGatewayProvider(token=TOKEN, base_url=f"{gateway.url}/",
                                   callback_url=callback)


async def test_sends_our_code_with_its_ttl_payload_and_callback(gateway: Gateway) -> None:
    receipt = await provider(gateway).send(MESSAGE)
    (req,) = gateway.received
    assert req.path == "/sendVerificationMessage"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"].startswith("application/json")
    assert req.json == {"phone_number": PHONE, "code": "123456", "ttl": 300,
                        "payload": CODE_ID,
                        "callback_url": "https://mfa.example.com/hooks/delivery/telegram"}
    assert receipt.provider == "telegram" and receipt.reference == "req1"


@pytest.mark.parametrize(("ttl", "sent"), [(10, 30), (600, 600), (86400, 3600)])
async def test_the_ttl_stays_within_what_the_gateway_takes(gateway: Gateway, ttl: int,
                                                           sent: int) -> None:
    message = OutgoingMessage(channel="telegram", to=PHONE, body="", code="123456",
                              ttl_seconds=ttl)
    await provider(gateway, callback=None).send(message)
    assert gateway.received[0].json == {"phone_number": PHONE, "code": "123456", "ttl": sent}


async def test_a_message_without_a_code_is_not_sent(gateway: Gateway) -> None:
    with pytest.raises(ProviderError):
        await provider(gateway).send(OutgoingMessage(channel="telegram", to=PHONE, body="x"))
    assert gateway.received == []


@pytest.mark.parametrize(("answer", "invalid", "retryable"), [
    (Gateway.error("PHONE_NUMBER_INVALID"), True, False),
    (Gateway.error("ACCESS_TOKEN_INVALID", 401), False, False),
    (Gateway.error("BALANCE_NOT_ENOUGH"), False, False),
    (Gateway.error("FLOOD_WAIT_30", 429), False, True),
    (Gateway.error("PHONE_NUMBER_INVALID", 200), True, False),  # ok: false, whatever status
    (Scripted(502, {}), False, True),
])
async def test_gateway_errors_are_provider_errors(gateway: Gateway, answer: Scripted,
                                                  invalid: bool, retryable: bool) -> None:
    gateway.script.append(answer)
    with pytest.raises(ProviderError) as info:
        await provider(gateway).send(MESSAGE)
    assert info.value.provider == "telegram" and info.value.status == answer.status
    assert info.value.invalid_destination is invalid
    assert info.value.retryable is retryable
    if answer.body:
        assert answer.body["error"] in str(info.value)
    assert len(gateway.received) == 1  # never sent twice


# --- delivery reports ---------------------------------------------------------------------

REPORT = json.dumps({"request_id": "req1", "phone_number": "447700900123",
                     "request_cost": 0.01, "payload": CODE_ID,
                     "delivery_status": {"status": "read", "updated_at": 1795000000}}).encode()


REPORTER = TelegramGatewayProvider(token=TOKEN)


def signed(body: bytes, at: datetime = NOW, token: str = TOKEN) -> dict[str, str]:
    """Headers as the Gateway signs a report (core.telegram.org/gateway/api, "Checking
    report integrity"), written out here independently of the provider."""
    stamp = str(int(at.timestamp()))
    key = hashlib.sha256(token.encode()).digest()
    signature = hmac.new(key, f"{stamp}\n".encode() + body, hashlib.sha256).hexdigest()
    return {"x-request-timestamp": stamp, "x-request-signature": signature}


def test_a_signed_report_is_read() -> None:
    report = REPORTER.delivery_report(signed(REPORT), REPORT, NOW)
    assert report.provider == "telegram" and report.status == "read"
    assert report.reference == CODE_ID and report.provider_reference == "req1"


def test_a_report_a_little_late_or_early_is_still_read() -> None:
    for at in (NOW - timedelta(seconds=290), NOW + timedelta(seconds=290)):
        assert REPORTER.delivery_report(signed(REPORT, at), REPORT, NOW).status == "read"


@pytest.mark.parametrize("headers", [
    {},
    {"x-request-timestamp": str(int(NOW.timestamp()))},
    {**signed(REPORT), "x-request-signature": "0" * 64},
    {**signed(REPORT), "x-request-signature": "not hex ✗"},
    signed(REPORT, token="another-token"),
    signed(REPORT + b" "),  # another body
    signed(REPORT, NOW - timedelta(minutes=6)),  # stale: a replay
    signed(REPORT, NOW + timedelta(minutes=6)),
    {**signed(REPORT), "x-request-timestamp": "soon"},
], ids=["unsigned", "no-signature", "wrong", "garbage", "other-token", "other-body",
        "stale", "future", "bad-timestamp"])
def test_a_report_not_signed_by_the_gateway_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ReportRefused):
        REPORTER.delivery_report(headers, REPORT, NOW)


def test_a_signed_body_that_is_not_a_status_is_refused() -> None:
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(ReportRefused):
            REPORTER.delivery_report(signed(body), body, NOW)


# --- configuration -------------------------------------------------------------------------

def test_without_a_token_the_outbox_carries_telegram_codes(settings: Settings) -> None:
    outbox = object()
    assert telegram_provider(settings, outbox) is outbox  # type: ignore[arg-type]
    assert telegram_provider(settings, None) is None  # production: nothing


def test_reports_are_asked_for_only_at_an_https_public_address(settings: Settings) -> None:
    def callback(public_url: str) -> object:
        s = settings.model_copy(update={"telegram_gateway_token": TOKEN,
                                        "public_url": public_url})
        p = telegram_provider(s, None)
        assert isinstance(p, TelegramGatewayProvider)
        return p._callback
    assert callback("https://mfa.example.com/") == \
        "https://mfa.example.com/hooks/delivery/telegram"
    assert callback("http://localhost:8000") is None
