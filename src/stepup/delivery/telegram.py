"""Telegram Gateway API: our own code, in the verification message Telegram sends.

``POST {base}/sendVerificationMessage`` (JSON, ``Authorization: Bearer <token>``) with
``phone_number`` (E.164), ``code`` (ours: Telegram takes 4 to 8 digits), ``ttl`` (the
code's lifetime, within Telegram's 30–3600 s: an unread message is deleted then, and
its fee refunded), ``payload`` (our id of the code) and, when ``PUBLIC_URL`` is https as
Telegram requires, ``callback_url`` (``/hooks/delivery/telegram``). Every answer is
``{"ok": true, "result": RequestStatus}`` or ``{"ok": false, "error": "PHONE_NUMBER_INVALID"}``.

Telegram writes the message itself, in its fixed words around the code, so the text we
compose (``OutgoingMessage.body``) is never sent: it is what the development outbox
shows. Delivery reports (a RequestStatus) come with ``X-Request-Timestamp`` and
``X-Request-Signature``: the hex HMAC-SHA-256 of ``timestamp + "\\n" + raw body``, keyed
with the SHA-256 of the access token; a report older or newer than five minutes is
refused, so a recorded one cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime

from stepup.config import Settings
from stepup.delivery.base import (
    DeliveryReport,
    OutgoingMessage,
    Provider,
    ProviderError,
    Receipt,
    ReportRefused,
)
from stepup.delivery.http import json_or_empty, post

NAME = "telegram"
HOOK = f"/hooks/delivery/{NAME}"
TTL_RANGE = (30, 3600)  # what sendVerificationMessage accepts
MAX_SKEW_SECONDS = 300  # a report's timestamp this far from our clock is refused


def _invalid_recipient(error: str) -> bool:
    # PHONE_NUMBER_INVALID and the other PHONE_NUMBER_* errors: this number cannot get
    # a message on Telegram (malformed, or no Telegram account); sending again won't help.
    return error.startswith("PHONE_NUMBER_")


class TelegramGatewayProvider:
    name = NAME

    def __init__(self, *, token: str, base_url: str = "https://gatewayapi.telegram.org/",
                 callback_url: str | None = None) -> None:
        self._token = token
        self._base = base_url.rstrip("/")
        self._callback = callback_url
        self._report_key = hashlib.sha256(token.encode()).digest()

    async def send(self, message: OutgoingMessage) -> Receipt:
        if not message.code:
            raise ProviderError(self.name, "the Gateway sends our code: the message has none")
        payload: dict[str, object] = {"phone_number": message.to, "code": message.code}
        if message.ttl_seconds:
            low, high = TTL_RANGE
            payload["ttl"] = min(max(message.ttl_seconds, low), high)
        if message.reference:
            payload["payload"] = message.reference
        if self._callback:
            payload["callback_url"] = self._callback
        r = await post(self.name, f"{self._base}/sendVerificationMessage", json=payload,
                       headers={"Authorization": f"Bearer {self._token}"})
        data = json_or_empty(r)
        if r.status_code == 200 and data.get("ok") is True:
            result = data.get("result") or {}
            reference = result.get("request_id") if isinstance(result, dict) else None
            return Receipt(self.name, str(reference or "") or None)
        error = str(data.get("error") or r.text[:200] or "no answer")
        raise ProviderError(
            self.name, f"Telegram Gateway error {error}", status=r.status_code,
            retryable=r.status_code >= 500 or error.startswith("FLOOD_WAIT"),
            details={"error": error}, invalid_destination=_invalid_recipient(error))

    def delivery_report(self, headers: Mapping[str, str], body: bytes, now: datetime
                        ) -> DeliveryReport:
        stamp = headers.get("x-request-timestamp", "").strip()
        signature = headers.get("x-request-signature", "").strip().lower()
        if not stamp.isdigit() or not signature:
            raise ReportRefused("no X-Request-Timestamp or X-Request-Signature")
        if abs(now.timestamp() - int(stamp)) > MAX_SKEW_SECONDS:
            raise ReportRefused(f"stale report: X-Request-Timestamp {stamp}")
        expected = hmac.new(self._report_key, stamp.encode() + b"\n" + body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise ReportRefused("the signature does not match")
        try:
            status = json.loads(body)
        except ValueError as exc:
            raise ReportRefused("the body is not JSON") from exc
        if not isinstance(status, dict):
            raise ReportRefused("the body is not a RequestStatus")
        delivery = status.get("delivery_status")
        word = delivery.get("status") if isinstance(delivery, dict) else None
        return DeliveryReport(self.name, str(word or "unknown"),
                              reference=str(status.get("payload") or "") or None,
                              provider_reference=str(status.get("request_id") or "") or None)


def telegram_provider(s: Settings, outbox: Provider | None) -> Provider | None:
    """The Gateway when its token is set, else the development outbox."""
    if not s.telegram_gateway_token:
        return outbox
    public = s.public_url.rstrip("/")
    return TelegramGatewayProvider(
        token=s.telegram_gateway_token, base_url=s.telegram_gateway_base_url,
        # Telegram posts reports to https only; elsewhere (development) none are asked for.
        callback_url=f"{public}{HOOK}" if public.startswith("https://") else None)
