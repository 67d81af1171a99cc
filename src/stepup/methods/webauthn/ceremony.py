"""The parts of a passkey ceremony that hold no state: the relying party, the sealing of a
credential to its row, and the reading of what a browser sent (an unreadable answer is
``invalid_code`` with one sentence, and py_webauthn's refusals are told in words a user
can act on). method.py runs the ceremonies with them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from stepup.config import Settings
from stepup.domain.errors import InvalidCode
from stepup.store.models import Passkey

if TYPE_CHECKING:
    from webauthn.helpers.exceptions import InvalidAuthenticationResponse

NOT_A_PASSKEY = "This is not a passkey answer: try again with your passkey."


def relying_party(settings: Settings) -> tuple[str, list[str]]:
    """(RP id, accepted origins): WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS, else PUBLIC_URL's."""
    parts = urlsplit(settings.public_url)
    rp_id = settings.webauthn_rp_id or parts.hostname or "localhost"
    return rp_id, settings.webauthn_origins or [f"{parts.scheme}://{parts.netloc}"]


@dataclass
class Stored:
    """A passkey with its credential unsealed."""

    row: Passkey
    credential_id: bytes
    public_key: bytes


def aad(user_id: str, passkey_id: str) -> bytes:
    """What a passkey's sealed credential is bound to: its user and its row."""
    return f"webauthn:{user_id}:{passkey_id}".encode()


def parse(proof: str) -> dict[str, Any]:
    """The ``PublicKeyCredential`` a browser sent, as JSON in ``code``."""
    try:
        credential = json.loads(proof)
    except ValueError:
        raise InvalidCode(NOT_A_PASSKEY) from None
    if not isinstance(credential, dict):
        raise InvalidCode(NOT_A_PASSKEY)
    return credential


def challenge_of(credential: dict[str, Any]) -> bytes:
    """The challenge the browser signed, read from its client data (not yet checked)."""
    from webauthn.helpers import base64url_to_bytes, exceptions, parse_client_data_json

    try:
        response = credential["response"]
        client_data = parse_client_data_json(base64url_to_bytes(response["clientDataJSON"]))
    except (KeyError, TypeError, ValueError, AttributeError, exceptions.WebAuthnException):
        raise InvalidCode(NOT_A_PASSKEY) from None
    return client_data.challenge


def reason(exc: InvalidAuthenticationResponse) -> str:
    """py_webauthn's refusal, told in words the user can act on."""
    text = str(exc).lower()
    if "origin" in text or "rp id" in text:
        return "This passkey answer was made for another site."
    if "sign count" in text:
        return "This passkey answer was already used."
    return "The passkey could not be checked: try again."
