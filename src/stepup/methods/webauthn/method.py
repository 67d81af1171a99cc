"""Passkeys (WebAuthn) with py_webauthn: one method, any number of passkeys.

Enabling returns the browser's ``publicKey`` creation options; the confirmation is the
``PublicKeyCredential`` the browser made, as JSON. One more passkey is added the same
way (``begin_add``, purpose ``add:webauthn``; services/passkeys.py). Every later use
(login, a withdrawal, a switch, removing a passkey, Disable) first asks for a challenge
— request options naming every passkey of the account, bound to that one purpose like
an out-of-band code — and the proof is the signed assertion, as JSON, in ``code``.

A challenge is 32 random bytes, kept as an HMAC in ``challenges`` (channel ``webauthn``):
single use, ``code_ttl_seconds``, ``code_max_attempts`` wrong tries, a newer challenge
for the same purpose retires the older, and at most 60 are made per account and hour.
Each passkey's credential id and public key are sealed with the key ring and bound to
its row (AES-GCM: nobody with write access to the table alone can swap in a key of
their own). Its signature counter only moves forward, with one conditional UPDATE: an
assertion whose counter does not exceed the stored one (a cloned authenticator, or a
replay) is refused; authenticators that always report 0 (synced passkeys) are accepted.
An answer sent again after it was accepted — its challenge the newest one for the
purpose and spent, its signature good, its passkey's counter and last use showing that
this answer was the one taken — is told ``code_already_used``, a retry and not a guess.

The relying party is the host of ``PUBLIC_URL`` and the accepted origin is
``PUBLIC_URL``'s, unless ``WEBAUTHN_RP_ID`` / ``WEBAUTHN_ORIGINS`` say otherwise.
Browsers refuse passkeys on a bare IP address, so use a host name
(``http://localhost:8000`` in development).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepup.domain.clock import hour_window
from stepup.domain.codes import same
from stepup.domain.errors import (
    CodeAlreadyUsed,
    CodeExpired,
    Conflict,
    InvalidCode,
    RateLimited,
)
from stepup.domain.hashing import new_id
from stepup.domain.policy import MethodStatus, Purpose
from stepup.i18n import translations
from stepup.methods.base import (
    N_,
    ChallengeSent,
    Descriptor,
    EnrollmentStart,
    MethodContext,
    MethodView,
    PasskeyOptions,
    Verified,
    pending_row,
    row_view,
)
from stepup.methods.webauthn import ceremony
from stepup.store import codes, queries
from stepup.store.models import Challenge, Passkey, User
from stepup.store.models import Method as MethodRow

# py_webauthn (with cbor2, pyOpenSSL and pyasn1: ~7 MB a worker) is imported by the
# functions that run a ceremony: most workers' requests never touch a passkey.
if TYPE_CHECKING:
    from webauthn.authentication.verify_authentication_response import VerifiedAuthentication

CHANNEL = "webauthn"
SENT_TO = "passkey"
ADD = Purpose(f"add:{CHANNEL}")  # one more passkey, the method being enabled already
CHALLENGES_PER_HOUR = 60


class WebAuthnMethod:
    type = CHANNEL
    login_fallback = False
    add_purpose = ADD  # the ability HoldsSeveralCredentials

    # --- challenges: issued like a code, kept as an HMAC ---------------------------------

    def _mac(self, ctx: MethodContext, challenge_id: str, challenge: bytes) -> str:
        from webauthn.helpers import bytes_to_base64url

        return ctx.hasher.mac("webauthn-challenge", challenge_id, bytes_to_base64url(challenge))

    async def _issue(self, ctx: MethodContext, user: User, purpose: Purpose) -> bytes:
        now = ctx.clock.now()
        # Each challenge is a row: capped per account and hour like codes sent, so a
        # script cannot fill the table. A refusal rolls back and spends nothing.
        window, retry = hour_window(now)
        if await queries.rate_hit(ctx.db, f"passkey-requests:{user.id}", window) > \
                CHALLENGES_PER_HOUR:
            raise RateLimited("Too many passkey requests: try again later.", retry_after=retry)
        from webauthn.helpers import generate_challenge

        challenge = generate_challenge()
        challenge_id = new_id()
        ctx.db.add(Challenge(id=challenge_id, user_id=user.id, channel=CHANNEL,
                            purpose=purpose.value,
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
            await self._refuse_replay(ctx, user, purpose, credential)
            raise InvalidCode("No passkey request is open for this step, or it was already "
                              "answered: start again.")
        if live.attempts >= s.code_max_attempts:
            raise CodeExpired("Too many failed tries for this request: start again.")
        if live.expires_at <= ctx.clock.now():
            raise CodeExpired("This passkey request has expired: start again.")
        challenge = ceremony.challenge_of(credential)
        if not same(self._mac(ctx, live.id, challenge), live.code_hash):
            # The answer accepted last time, sent again after a new request was opened
            # (showing the login page opens one), is a repeat, not a guess: not counted.
            await self._refuse_replay(ctx, user, purpose, credential)
            await codes.count_wrong_try(ctx.db, live.id)
            raise InvalidCode("This passkey answer is for another request: start again.")
        if not await codes.consume(ctx.db, live.id, s.code_max_attempts, ctx.clock.now()):
            await self._refuse_replay(ctx, user, purpose, credential)  # a racing twin won
            raise InvalidCode("This passkey request was already answered: start again.")
        return challenge

    async def _refuse_replay(self, ctx: MethodContext, user: User, purpose: Purpose,
                             credential: dict[str, Any]) -> None:
        """Raise CodeAlreadyUsed if ``credential`` is the answer last accepted for
        ``purpose``. A spent challenge alone does not say so (a refused answer spends it
        too), so the answer must also verify, and its passkey must have recorded this
        very use: the counter it carries and a last use at or after the spending."""
        if purpose in (Purpose.enroll(self.type), ADD):
            return  # a new passkey's answer is stored once; the services tell a repeat
        try:
            challenge = ceremony.challenge_of(credential)
        except InvalidCode:
            return
        now = ctx.clock.now()
        spent = next((c for c in await codes.recently_spent(ctx.db, user.id, CHANNEL,
                                                            purpose.value)
                      if same(self._mac(ctx, c.id, challenge), c.code_hash)), None)
        if spent is None or spent.used_at is None or spent.expires_at <= now:
            return
        try:
            # Checked as if no counter were stored: once accepted, the stored counter is
            # this answer's own, which the forward-only check would refuse.
            used, checked = await self._assertion(ctx, user, credential, challenge,
                                                  sign_count=0)
        except InvalidCode:
            return
        last = used.row.last_used_at
        if last is not None and last >= spent.used_at and \
                checked.new_sign_count == used.row.sign_count:
            raise CodeAlreadyUsed("This passkey answer was already accepted: start again "
                                  "if you need another.")

    # --- the stored passkeys -------------------------------------------------------------

    async def _passkeys(self, ctx: MethodContext, user: User) -> list[ceremony.Stored]:
        from webauthn.helpers import base64url_to_bytes

        found = []
        for pk in await queries.list_passkeys(ctx.db, user.id):
            sealed = json.loads(ctx.keyring.decrypt(pk.secret_kid, pk.secret_ct,
                                                    ceremony.aad(pk.user_id, pk.id)))
            found.append(ceremony.Stored(pk, base64url_to_bytes(sealed["id"]),
                                         base64url_to_bytes(sealed["public_key"])))
        return found

    def _options(self, ctx: MethodContext, user: User, challenge: bytes,
                 exclude: list[ceremony.Stored]) -> PasskeyOptions:
        import webauthn
        from webauthn.helpers import options_to_json_dict, structs

        rp_id, _ = ceremony.relying_party(ctx.settings)
        options = webauthn.generate_registration_options(
            rp_id=rp_id, rp_name=ctx.settings.issuer, user_name=user.email,
            user_id=user.id.encode(), challenge=challenge,
            timeout=ctx.settings.code_ttl_seconds * 1000,
            attestation=structs.AttestationConveyancePreference.NONE,
            authenticator_selection=structs.AuthenticatorSelectionCriteria(
                resident_key=structs.ResidentKeyRequirement.PREFERRED,
                user_verification=structs.UserVerificationRequirement.PREFERRED),
            exclude_credentials=[structs.PublicKeyCredentialDescriptor(id=s.credential_id)
                                 for s in exclude])
        return PasskeyOptions(options_to_json_dict(options), ctx.settings.code_ttl_seconds)

    async def begin_add(self, ctx: MethodContext, user: User) -> PasskeyOptions:
        """Creation options for one more passkey (the method is enabled); the browser
        is told to refuse an authenticator that already holds one of them."""
        challenge = await self._issue(ctx, user, ADD)
        return self._options(ctx, user, challenge, await self._passkeys(ctx, user))

    # --- the protocol --------------------------------------------------------------------

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart:
        row = await pending_row(ctx, user, self.type, already_enabled=(
            "Passkeys are already enabled: add another one instead."))
        await queries.delete_passkeys(ctx.db, row.id)  # from an enrolment left unfinished
        challenge = await self._issue(ctx, user, Purpose.enroll(self.type))
        return EnrollmentStart(self._options(ctx, user, challenge, []))

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        return None  # verify() checked the new credential and stored it

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None:
        if row.status == MethodStatus.PENDING:
            raise Conflict("Finish adding the passkey with the request it was started with, "
                           "or start again with Enable.")
        import webauthn
        from webauthn.helpers import options_to_json_dict, structs

        rp_id, _ = ceremony.relying_party(ctx.settings)
        challenge = await self._issue(ctx, user, purpose)
        options = webauthn.generate_authentication_options(
            rp_id=rp_id, challenge=challenge, timeout=ctx.settings.code_ttl_seconds * 1000,
            allow_credentials=[structs.PublicKeyCredentialDescriptor(id=s.credential_id)
                               for s in await self._passkeys(ctx, user)],
            user_verification=structs.UserVerificationRequirement.PREFERRED)
        return ChallengeSent(sent_to=SENT_TO, expires_in=ctx.settings.code_ttl_seconds,
                             resend_in=0, options=options_to_json_dict(options))

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified:
        """An assertion by one of the user's passkeys; for the enrolment (or ADD) purpose,
        a new passkey, which is stored. ``notes["passkey"]`` names the passkey."""
        credential = ceremony.parse(proof)
        challenge = await self._spend(ctx, user, purpose, credential)
        rp_id, origin = ceremony.relying_party(ctx.settings)
        if purpose in (Purpose.enroll(self.type), ADD):
            made = await self._register(ctx, user, row, credential, challenge, rp_id, origin)
            return Verified(notes={"passkey": made.id, "passkey_name": made.name})
        used, checked = await self._assertion(ctx, user, credential, challenge)
        if not await queries.passkey_used(ctx.db, used.row, checked.new_sign_count,
                                          ctx.clock.now()):
            raise InvalidCode("This passkey answer was already used.")
        return Verified(notes={"passkey": used.row.id, "passkey_name": used.row.name})

    async def _assertion(self, ctx: MethodContext, user: User, credential: dict[str, Any],
                         challenge: bytes, *, sign_count: int | None = None
                         ) -> tuple[ceremony.Stored, VerifiedAuthentication]:
        """The user's passkey that signed ``credential`` over ``challenge``, checked
        against its stored counter (or ``sign_count``); InvalidCode otherwise."""
        import webauthn
        from webauthn.helpers import base64url_to_bytes
        from webauthn.helpers.exceptions import InvalidAuthenticationResponse, WebAuthnException

        rp_id, origin = ceremony.relying_party(ctx.settings)
        try:
            raw_id = base64url_to_bytes(str(credential.get("rawId", "")))
            # Every stored id is compared, in constant time, so the answer takes as long
            # whichever passkey (if any) it names.
            matches = [s for s in await self._passkeys(ctx, user) if same(s.credential_id, raw_id)]
            if not matches:
                raise InvalidCode("This is not a passkey of this account.")
            used = matches[0]
            checked = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
                expected_origin=origin, credential_public_key=used.public_key,
                credential_current_sign_count=(used.row.sign_count if sign_count is None
                                               else sign_count))
        except InvalidAuthenticationResponse as exc:
            raise InvalidCode(ceremony.reason(exc)) from None
        except (WebAuthnException, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidCode(ceremony.NOT_A_PASSKEY) from None
        return used, checked

    async def _register(self, ctx: MethodContext, user: User, row: MethodRow,
                        credential: dict[str, Any], challenge: bytes, rp_id: str,
                        origin: list[str]) -> Passkey:
        import webauthn
        from webauthn.helpers import bytes_to_base64url, exceptions

        try:
            made = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
                expected_origin=origin)
        except (exceptions.WebAuthnException, KeyError, TypeError, ValueError, AttributeError):
            raise InvalidCode("The passkey could not be checked: try again.") from None
        existing = await self._passkeys(ctx, user)
        if any(same(s.credential_id, made.credential_id) for s in existing):
            raise Conflict("This passkey is already on the account.")
        pk = Passkey(id=new_id(), user_id=user.id, method_id=row.id,
                     name=default_name(user.language, {s.row.name for s in existing}),
                     sign_count=made.sign_count,
                     created_at=ctx.clock.now(), last_used_at=None)
        sealed = json.dumps({"id": bytes_to_base64url(made.credential_id),
                             "public_key": bytes_to_base64url(made.credential_public_key)})
        pk.secret_kid, pk.secret_ct = ctx.keyring.encrypt(sealed.encode(),
                                                          ceremony.aad(user.id, pk.id))
        ctx.db.add(pk)
        await ctx.db.flush()
        return pk

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None:
        await queries.delete_passkeys(ctx.db, row.id)
        await queries.delete_method(ctx.db, row.id)

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView:
        view = row_view(ctx.settings, self.type, row)
        if view.enabled:
            view.passkeys = [{"id": pk.id, "name": pk.name, "created_at": pk.created_at,
                              "last_used_at": pk.last_used_at}
                             for pk in await queries.list_passkeys(ctx.db, user.id)]
        return view


DEFAULT_NAME = N_("Passkey %(num)d")


def default_name(language: str | None, taken: set[str]) -> str:
    """The name of a new passkey the user did not name: "Passkey 2", in the user's
    language at its creation ("Ключ доступа 2"). It is stored like a name the user typed
    (the API, notices and the audit show the same words), so a later change of language
    leaves it as it was; Rename changes it."""
    template = translations(language or "en").gettext(DEFAULT_NAME)
    number = len(taken) + 1
    while template % {"num": number} in taken:
        number += 1
    return template % {"num": number}


DESCRIPTOR = Descriptor(
    type=CHANNEL, order=60,
    name=N_("Passkeys"), notice_name=N_("Passkeys"),
    blurb=N_("Your device's fingerprint, face or screen lock, or a security key."),
    browser_ceremony=True, templates=Path(__file__).parent / "templates",
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable passkeys"),
        "disable": N_("Disable passkeys"),
        "enabled": N_("Passkeys are enabled."),
        "disabled": N_("Passkeys are disabled."),
        "switched": N_("The protection settings of passkeys were saved."),
        "notice_enabled": N_("Passkeys were enabled on your account."),
        "notice_disabled": N_("Passkeys were disabled on your account."),
        "notice_switched": N_("Protection settings changed for passkeys. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("Passkeys are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for your passkey when you confirm "
                        "this operation."),
        "switch_off": N_("Your passkey will no longer be asked for on this operation."),
    },
)
METHOD = WebAuthnMethod()
