"""Passkeys' settings (``STEPUP_WEBAUTHN_*``), composed into ``config.Settings``.

This module imports nothing of StepUp: ``config`` imports it while it is being built.
"""

from __future__ import annotations

from pydantic import BaseModel


class WebAuthnSettings(BaseModel):
    # Passkeys: the relying party id (default: PUBLIC_URL's host; may be a registrable
    # suffix of it, e.g. example.com for mfa.example.com, so that a portal on
    # www.example.com can use the same passkeys) and the page origins allowed to use
    # them (default: PUBLIC_URL's origin).
    webauthn_rp_id: str | None = None
    webauthn_origins: list[str] = []

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe in production."""
        if any(not o.startswith("https://") for o in self.webauthn_origins):
            return ["STEPUP_WEBAUTHN_ORIGINS must all be https:// origins in production"]
        return []
