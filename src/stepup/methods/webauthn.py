"""Passkeys (WebAuthn) with py_webauthn: one passkey per account.

Enrolling returns the browser's ``publicKey`` creation options; the confirmation is the
``PublicKeyCredential`` the browser made, as JSON. Every later use (login, a withdrawal,
a switch, Disable) first asks for a challenge — the request options, bound to that one
purpose like an out-of-band code — and the proof is the signed assertion, as JSON, in
the ``code`` field.

A challenge is 32 random bytes, kept as an HMAC in ``oob_codes`` (channel ``webauthn``):
single use, ``code_ttl_seconds``, ``code_max_attempts`` wrong tries, and a newer
challenge for the same purpose retires the older. The credential's id and public key
are stored encrypted with the key ring and bound to the method row (AES-GCM: nobody
with write access to the table alone can swap in a key of their own). The signature
counter lives in ``last_step`` and only moves forward, with one conditional UPDATE: an
assertion whose counter does not exceed the stored one (a cloned authenticator, or a
replay) is refused; authenticators that always report 0 (synced passkeys) are accepted.

The relying party is the host of ``PUBLIC_URL`` and the accepted origin is
``PUBLIC_URL``'s, unless ``WEBAUTHN_RP_ID`` / ``WEBAUTHN_ORIGINS`` say otherwise.
Browsers refuse passkeys on a bare IP address, so use a host name
(``http://localhost:8000`` in development).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    generate_challenge,
    options_to_json_dict,
    parse_client_data_json,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from stepup.config import Settings
from stepup.domain.codes import same
from stepup.domain.errors import CodeExpired, Conflict, InvalidCode, RateLimited
from stepup.domain.hashing import new_id
from stepup.domain.policy import Purpose
from stepup.methods.base import (
    ChallengeSent,
    EnrollmentStart,
    MethodContext,
    MethodView,
    Verified,
    row_view,
)
from stepup.store import codes, queries
from stepup.store.models import Method as MethodRow
from stepup.store.models import OobCode, User

CHANNEL = "webauthn"
SENT_TO = "passkey"
CHALLENGES_PER_HOUR = 60
NOT_A_PASSKEY = "This is not a passkey answer: try again with your passkey."


def relying_party(settings: Settings) -> tuple[str, list[str]]:
    """(RP id, accepted origins): WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS, else PUBLIC_URL's."""
    parts = urlsplit(settings.public_url)
    rp_id = settings.webauthn_rp_id or parts.hostname or "localhost"
    return rp_id, settings.webauthn_origins or [f"{parts.scheme}://{parts.netloc}"]


def _aad(user_id: str, method_id: str) -> bytes:
    return f"webauthn:{user_id}:{method_id}".encode()


def _parse(proof: str) -> dict[str, Any]:
    try:
        credential = json.loads(proof)
    except ValueError:
        raise InvalidCode(NOT_A_PASSKEY) from None
    if not isinstance(credential, dict):
        raise InvalidCode(NOT_A_PASSKEY)
    return credential


def _challenge_of(credential: dict[str, Any]) -> bytes:
    try:
        response = credential["response"]
        client_data = parse_client_data_json(base64url_to_bytes(response["clientDataJSON"]))
    except (KeyError, TypeError, ValueError, AttributeError, WebAuthnException):
        raise InvalidCode(NOT_A_PASSKEY) from None
    return client_data.challenge


class WebAuthnMethod:
    type = CHANNEL
    login_fallback = False

    # --- challenges: issued like a code, kept as an HMAC ---------------------------------

    def _mac(self, ctx: MethodContext, challenge_id: str, challenge: bytes) -> str:
        return ctx.hasher.mac("webauthn-challenge", challenge_id, bytes_to_base64url(challenge))

    async def _issue(self, ctx: MethodContext, user: User, purpose: Purpose) -> bytes:
        now = ctx.clock.now()
        # Each challenge is a row: capped per account and hour like codes sent, so a
        # script cannot fill the table. A refusal rolls back and spends nothing.
        window = now.replace(minute=0, second=0, microsecond=0)
        if await queries.rate_hit(ctx.db, f"passkey-requests:{user.id}", window) > \
                CHALLENGES_PER_HOUR:
            retry = int((window + timedelta(hours=1) - now).total_seconds()) + 1
            raise RateLimited("Too many passkey requests: try again later.", retry_after=retry)
        challenge = generate_challenge()
        challenge_id = new_id()
        ctx.db.add(OobCode(id=challenge_id, user_id=user.id, channel=CHANNEL,
                           destination=SENT_TO, purpose=purpose.value,
                           code_hash=self._mac(ctx, challenge_id, challenge), created_at=now,
                           expires_at=now + timedelta(seconds=ctx.settings.code_ttl_seconds),
                           sent_at=None, used_at=None, attempts=0))
        await ctx.db.flush()
        await codes.mark_sent(ctx.db, challenge_id, now)  # handed over in the answer
        return challenge

    async def _spend(self, ctx: MethodContext, user: User, purpose: Purpose,
                     credential: dict[str, Any]) -> bytes:
        """The live challenge for ``purpose`` that ``credential`` answers, spent."""
        s = ctx.settings
        live = await codes.current(ctx.db, user.id, CHANNEL, purpose.value)
        if live is None:
            raise InvalidCode("No passkey request is open for this step, or it was already "
                              "answered: start again.")
        if live.attempts >= s.code_max_attempts:
            raise CodeExpired("Too many failed tries for this request: start again.")
        if live.expires_at <= ctx.clock.now():
            raise CodeExpired("This passkey request has expired: start again.")
        challenge = _challenge_of(credential)
        if not same(self._mac(ctx, live.id, challenge), live.code_hash):
            await codes.count_wrong_try(ctx.db, live.id)
            raise InvalidCode("This passkey answer is for another request: start again.")
        if not await codes.consume(ctx.db, live.id, s.code_max_attempts, ctx.clock.now()):
            raise InvalidCode("This passkey request was already answered: start again.")
        return challenge

    # --- the stored credential -----------------------------------------------------------

    def _credential(self, ctx: MethodContext, row: MethodRow) -> tuple[bytes, bytes]:
        assert row.secret_kid is not None and row.secret_ct is not None
        stored = json.loads(ctx.keyring.decrypt(row.secret_kid, row.secret_ct,
                                                _aad(row.user_id, row.id)))
        return base64url_to_bytes(stored["id"]), base64url_to_bytes(stored["public_key"])

    # --- the protocol --------------------------------------------------------------------

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart:
        row = await queries.get_method(ctx.db, user.id, self.type)
        if row is not None and row.status == "enabled":
            raise Conflict("A passkey is already enabled. Disable it first.")
        if row is None:
            row = MethodRow(id=new_id(), user_id=user.id, type=self.type, status="pending",
                            protects={}, created_at=ctx.clock.now())
            ctx.db.add(row)
        row.secret_kid = row.secret_ct = None
        row.last_step = None
        await ctx.db.flush()
        rp_id, _ = relying_party(ctx.settings)
        challenge = await self._issue(ctx, user, Purpose.enroll(self.type))
        options = webauthn.generate_registration_options(
            rp_id=rp_id, rp_name=ctx.settings.issuer, user_name=user.email,
            user_id=user.id.encode(), challenge=challenge,
            timeout=ctx.settings.code_ttl_seconds * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED))
        return EnrollmentStart(200, {"options": options_to_json_dict(options),
                                     "expires_in": ctx.settings.code_ttl_seconds})

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        return None  # verify() checked the new credential and stored it on the row

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None:
        if row.status == "pending":
            raise Conflict("Finish adding the passkey with the request it was started with, "
                           "or start again with Enable.")
        rp_id, _ = relying_party(ctx.settings)
        challenge = await self._issue(ctx, user, purpose)
        credential_id, _ = self._credential(ctx, row)
        options = webauthn.generate_authentication_options(
            rp_id=rp_id, challenge=challenge, timeout=ctx.settings.code_ttl_seconds * 1000,
            allow_credentials=[PublicKeyCredentialDescriptor(id=credential_id)],
            user_verification=UserVerificationRequirement.PREFERRED)
        return ChallengeSent(sent_to=SENT_TO, expires_in=ctx.settings.code_ttl_seconds,
                             resend_in=0, options=options_to_json_dict(options))

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified:
        credential = _parse(proof)
        challenge = await self._spend(ctx, user, purpose, credential)
        rp_id, origin = relying_party(ctx.settings)
        if row.status == "pending":
            await self._register(ctx, row, credential, challenge, rp_id, origin)
            return Verified()
        credential_id, public_key = self._credential(ctx, row)
        try:
            if not same(base64url_to_bytes(str(credential.get("rawId", ""))), credential_id):
                raise InvalidCode("This is not the passkey of this account.")
            checked = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
                expected_origin=origin, credential_public_key=public_key,
                credential_current_sign_count=row.last_step or 0)
        except InvalidAuthenticationResponse as exc:
            raise InvalidCode(_reason(exc)) from None
        except (WebAuthnException, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidCode(NOT_A_PASSKEY) from None
        count = checked.new_sign_count
        if count and not await queries.advance_counter(ctx.db, row, count, ctx.clock.now()):
            raise InvalidCode("This passkey answer was already used.")
        return Verified()

    async def _register(self, ctx: MethodContext, row: MethodRow, credential: dict[str, Any],
                        challenge: bytes, rp_id: str, origin: list[str]) -> None:
        try:
            made = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
                expected_origin=origin)
        except (WebAuthnException, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidCode("The passkey could not be checked: try again.") from None
        stored = json.dumps({"id": bytes_to_base64url(made.credential_id),
                             "public_key": bytes_to_base64url(made.credential_public_key)})
        row.secret_kid, row.secret_ct = ctx.keyring.encrypt(stored.encode(),
                                                            _aad(row.user_id, row.id))
        row.last_step = made.sign_count

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None:
        await queries.delete_method(ctx.db, row.id)

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView:
        return row_view(ctx.settings, self.type, row)


def _reason(exc: InvalidAuthenticationResponse) -> str:
    text = str(exc).lower()
    if "origin" in text or "rp id" in text:
        return "This passkey answer was made for another site."
    if "sign count" in text:
        return "This passkey answer was already used."
    return "The passkey could not be checked: try again."
