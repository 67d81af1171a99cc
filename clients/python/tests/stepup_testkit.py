"""Helpers for the client's tests: fresh identities, TOTP codes and the dev outbox."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp

WITHDRAWAL = {"amount": "0.25", "currency": "BTC",
              "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}
_CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class Server:
    """A running ``stepup serve`` and an API key of role ``app`` for it."""

    base_url: str
    data_dir: Path
    api_key: str


def email() -> str:
    return f"client-{secrets.token_hex(6)}@example.com"


def phone() -> str:
    """A fresh Russian mobile number, so no two tests share a resend timer."""
    return f"+7916{secrets.randbelow(10**7):07d}"


def last_code(base_url: str, to: str, channel: str = "sms") -> str:
    """The code in the newest message to ``to`` in the development outbox."""
    r = httpx.get(f"{base_url}/api/v1/dev/outbox", params={"to": to}, timeout=5)
    assert r.status_code == 200, r.text
    bodies = [m["body"] for m in r.json()["messages"] if m["channel"] == channel]
    assert bodies, f"no {channel} message to {to}"
    # Security notices ("method enabled") go to the same number, sent by a background
    # task at their own moment: the newest message with a code, not the newest message.
    found = next((m for m in map(_CODE.search, bodies) if m), None)
    assert found, f"no code in {bodies!r}"
    return found.group(1)


class Authenticator:
    """An authenticator app on the real clock: each code is from a later 30-second step
    than the one before (StepUp takes each step once), inside StepUp's ±1 step window, so
    a test needs up to three codes before it has to wait."""

    def __init__(self, secret_or_uri: str) -> None:
        if secret_or_uri.startswith("otpauth://"):
            secret_or_uri = parse_qs(urlparse(secret_or_uri).query)["secret"][0]
        self.totp = pyotp.TOTP(secret_or_uri)
        self.last: int | None = None

    def code(self) -> str:
        while True:
            now = time.time()
            if now % 30 > 28.5:  # too close to a step boundary: let it pass
                time.sleep(30 - now % 30 + 0.1)
                continue
            step = int(now // 30)
            wanted = step - 1 if self.last is None else max(self.last + 1, step - 1)
            if wanted <= step + 1:
                self.last = wanted
                return str(self.totp.at(wanted * 30))
            time.sleep(30 - now % 30 + 0.1)

    def previous(self) -> str:
        """The code last handed out (a replay)."""
        assert self.last is not None
        return str(self.totp.at(self.last * 30))
