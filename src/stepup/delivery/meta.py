"""Meta WhatsApp Cloud API: an authentication template with the code as parameter.

``POST {base}/{phone_number_id}/messages`` with a bearer token. Authentication templates
take the code twice: in the body and in the copy-code button. Errors come as
``{"error": {"message", "type", "code", "fbtrace_id"}}``.
"""

from __future__ import annotations

from stepup.delivery.base import OutgoingMessage, ProviderError, Receipt
from stepup.delivery.http import json_or_empty, post

# Meta's error codes that say the recipient cannot receive: not a WhatsApp user or
# unable to receive (131026), not on the test account's allowed list (131030).
INVALID_RECIPIENT = frozenset({"131026", "131030"})

# WhatsApp template language codes for our languages.
TEMPLATE_LANGUAGE = {"en": "en_US", "ru": "ru"}


class MetaWhatsAppProvider:
    name = "meta"

    def __init__(self, *, access_token: str, phone_number_id: str, template: str,
                 base_url: str = "https://graph.facebook.com/v21.0") -> None:
        self._token = access_token
        self._phone_id = phone_number_id
        self._template = template
        self._base = base_url.rstrip("/")

    async def send(self, message: OutgoingMessage) -> Receipt:
        if message.channel != "whatsapp":
            raise ProviderError(self.name, f"cannot send {message.channel}")
        if not message.code:
            raise ProviderError(self.name, "an authentication template needs the code")
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.lstrip("+"),
            "type": "template",
            "template": {
                "name": self._template,
                "language": {"code": TEMPLATE_LANGUAGE.get(message.language, "en_US")},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": message.code}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": message.code}]},
                ],
            },
        }
        r = await post(self.name, f"{self._base}/{self._phone_id}/messages", json=payload,
                       headers={"Authorization": f"Bearer {self._token}"})
        data = json_or_empty(r)
        if r.status_code == 200:
            messages = data.get("messages") or [{}]
            return Receipt(self.name, str(messages[0].get("id") or "") or None)
        err = data.get("error") or {}
        raise ProviderError(
            self.name, f"Meta error {err.get('code')}: {err.get('message') or r.text[:200]}",
            status=r.status_code, retryable=r.status_code >= 500,
            details={"code": str(err.get("code", "")),
                     "fbtrace_id": str(err.get("fbtrace_id", ""))},
            invalid_destination=str(err.get("code", "")) in INVALID_RECIPIENT)
