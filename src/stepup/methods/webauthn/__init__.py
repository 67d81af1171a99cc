"""Passkeys (WebAuthn): one method, any number of passkeys, each answering a browser
ceremony bound to one purpose."""

from __future__ import annotations

from pathlib import Path

from stepup.methods.base import N_, Descriptor
from stepup.methods.webauthn.method import ADD, CHANNEL, WebAuthnMethod, _aad

DESCRIPTOR = Descriptor(
    type=CHANNEL, order=60,
    name=N_("Passkeys"), notice_name=N_("Passkeys"),
    blurb=N_("Your device's fingerprint, face or screen lock, or a security key."),
    browser_ceremony=True, templates=Path(__file__).parent / "templates",
)
METHOD = WebAuthnMethod()

__all__ = ["ADD", "CHANNEL", "DESCRIPTOR", "METHOD", "WebAuthnMethod", "_aad"]
