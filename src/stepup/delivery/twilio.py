"""Twilio Programmable Messaging for SMS and WhatsApp (REST, form POST, basic auth).

``POST {base}/2010-04-01/Accounts/{sid}/Messages.json`` with ``To``, ``From``, ``Body``;
WhatsApp numbers are written ``whatsapp:+E164``. Success is 201 with the message ``sid``;
errors carry Twilio's ``code`` and ``message`` in JSON.
"""

from __future__ import annotations

from stepup.delivery.base import OutgoingMessage, ProviderError, Receipt
from stepup.delivery.http import json_or_empty, post

# Twilio's error codes that say the recipient itself cannot receive: invalid 'To'
# number, not a mobile number, unsubscribed (STOP), unreachable region or carrier,
# WhatsApp address not found.
INVALID_RECIPIENT = frozenset({"21211", "21214", "21217", "21407", "21408", "21610",
                               "21612", "21614", "63003"})


class TwilioProvider:
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str | None,
                 whatsapp_from: str | None, base_url: str = "https://api.twilio.com") -> None:
        self._sid = account_sid
        self._token = auth_token
        self._from = from_number
        self._wa_from = whatsapp_from
        self._base = base_url.rstrip("/")

    async def send(self, message: OutgoingMessage) -> Receipt:
        if message.channel == "whatsapp":
            if not self._wa_from:
                raise ProviderError(self.name, "STEPUP_TWILIO_WHATSAPP_FROM is not set")
            sender = self._wa_from if self._wa_from.startswith("whatsapp:") else (
                f"whatsapp:{self._wa_from}")
            to = f"whatsapp:{message.to}"
        else:
            if not self._from:
                raise ProviderError(self.name, "STEPUP_TWILIO_FROM is not set")
            sender, to = self._from, message.to
        url = f"{self._base}/2010-04-01/Accounts/{self._sid}/Messages.json"
        r = await post(self.name, url, data={"To": to, "From": sender, "Body": message.body},
                       auth=(self._sid, self._token))
        data = json_or_empty(r)
        if r.status_code in (200, 201):
            return Receipt(self.name, str(data.get("sid") or "") or None)
        raise ProviderError(
            self.name, f"Twilio error {data.get('code')}: {data.get('message') or r.text[:200]}",
            status=r.status_code, retryable=r.status_code >= 500,
            details={"code": str(data.get("code", ""))},
            invalid_destination=str(data.get("code", "")) in INVALID_RECIPIENT)
