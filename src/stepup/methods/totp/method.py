"""Authenticator app (TOTP, RFC 6238) with pyotp.

The seed is 160 random bits, encrypted with the key ring and bound to its row. A time
step, once accepted, is refused forever after for that user: the store advances
``last_step`` with one conditional UPDATE, so of two racing requests exactly one wins.
The loser, and any later copy of a code whose step is at or before ``last_step``, is
told ``code_already_used`` — a retry, not a guess. A wrong code that is the code of a
coming step gets a clock-drift hint, and that step is burnt the same way first, so the
hint never confirms a guess that could be used later.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pyotp
from markupsafe import Markup

from stepup.domain.codes import normalise_numeric_code, same
from stepup.domain.errors import CodeAlreadyUsed, InvalidCode
from stepup.domain.policy import MethodStatus, Purpose
from stepup.methods.base import (
    N_,
    ChallengeSent,
    Descriptor,
    EnrollmentStart,
    MethodContext,
    MethodView,
    Verified,
    pending_row,
    row_view,
)
from stepup.store import apps, queries, step_spends
from stepup.store.models import Method as MethodRow
from stepup.store.models import User

STEP_SECONDS = 30
DIGITS = 6
# RFC 6238 allows HMAC-SHA1, -SHA256 and -SHA512; authenticator apps use SHA1, the
# others are here so the RFC's own test vectors can check this module (tests/unit).
DIGESTS = frozenset({"sha1", "sha256", "sha512"})


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()  # 160 bits (RFC 4226 §4)


def seed_bytes(secret: str) -> bytes:
    """The base32 seed as bytes; padding may be left out and case does not matter, as in
    authenticator apps (and pyotp)."""
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC of the 8-byte counter, dynamic truncation, ``digits`` digits.

    Computed here rather than through a ``pyotp.TOTP`` per code: a check computes three
    codes (the window) from one seed, and pyotp decodes the seed and builds its objects
    again for each. The RFC's vectors check this (tests/unit/test_totp_rfc6238.py), and
    pyotp's codes must equal these (tests/unit/test_totp_codes.py)."""
    if digest not in DIGESTS:
        raise ValueError(f"unknown digest {digest!r}")
    mac = hmac.digest(key, counter.to_bytes(8, "big"), digest)
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def code_at(secret: str, step: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    return hotp(seed_bytes(secret), step, digits=digits, digest=digest)


def time_step(when: datetime) -> int:
    return int(when.timestamp()) // STEP_SECONDS


def provisioning_uri(secret: str, issuer: str, email: str) -> str:
    # pyotp writes the label "Issuer:email" and the issuer parameter (Key URI Format).
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=issuer
    )


def match_step(secret: str, code: str, now_step: int, window: int, *, digits: int = DIGITS,
               digest: str = "sha1") -> int | None:
    """The step within ±window whose code equals ``code`` (checked in constant time)."""
    key = seed_bytes(secret)
    found = None
    for offset in range(-window, window + 1):
        if same(hotp(key, now_step + offset, digits=digits, digest=digest), code):
            found = now_step + offset
    return found


def drifted_step(secret: str, code: str, now_step: int, window: int, reach: int
                 ) -> int | None:
    """The step outside the window but within ``reach`` steps whose code is ``code``."""
    key = seed_bytes(secret)
    for distance in range(window + 1, reach + 1):
        for step in (now_step - distance, now_step + distance):
            if same(hotp(key, step), code):
                return step
    return None


def step_minutes(steps: int) -> int:
    """A distance in steps as whole minutes, never 0 (a hint of "0 minutes" says nothing)."""
    return round(steps * STEP_SECONDS / 60) or (1 if steps > 0 else -1)


def drift_minutes(secret: str, code: str, now_step: int, window: int, reach: int) -> int | None:
    """How far off the device clock is, if ``code`` matches a step outside the window."""
    step = drifted_step(secret, code, now_step, window, reach)
    return None if step is None else step_minutes(step - now_step)


def secret_groups(secret: str, size: int = 4) -> list[str]:
    """``JBSWY3DPEHPK3PXP`` → ``["JBSW", "Y3DP", "EHPK", "3PXP"]``: the page shows each
    group unbroken (a line may wrap between groups, never inside one)."""
    return [secret[i:i + size] for i in range(0, len(secret), size)]


def group_secret(secret: str, size: int = 4) -> str:
    """``JBSWY3DPEHPK3PXP`` → ``JBSW Y3DP EHPK 3PXP``: easier to type by hand."""
    return " ".join(secret_groups(secret, size))


_TICKET_LABEL = b"stepup totp: the set-up was shown"


def setup_ticket(secret: str) -> str:
    """What the set-up page sends back with a code, so that a wrong code can show the
    same QR code and key again: an HMAC of a fixed text keyed by the seed. It is not the
    seed and tells nothing of it (HMAC is a pseudo-random function of its key), yet only
    someone who was shown the seed can hold it — so showing the seed again to whoever
    sends it gives away nothing they did not have. A new enrollment, a new seed: the
    old ticket is worth nothing."""
    mac = hmac.digest(seed_bytes(secret), _TICKET_LABEL, "sha256")
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


# Apps that read the otpauth:// QR code, per mobile OS (seed 003: "select your OS type").
AUTHENTICATOR_APPS = {
    "Android": ["Google Authenticator", "Microsoft Authenticator", "Aegis Authenticator",
                "2FAS", "FreeOTP"],
    "iOS": ["Google Authenticator", "Microsoft Authenticator", "2FAS", "FreeOTP",
            "Ente Auth"],
}


_SVG_TITLE = re.compile(r"<title>.*?</title>", re.S)


@dataclass(frozen=True)
class TotpSetup:
    """The new seed for the authenticator app: typed in by hand, or scanned as a QR code
    of the otpauth:// URI. Shown once; the first valid code confirms it."""

    secret: str
    otpauth_uri: str
    qr_svg: str

    def page_context(self) -> dict[str, Any]:
        return {"secret_grouped": group_secret(self.secret),
                "secret_groups": secret_groups(self.secret),
                # segno's SVG: generated from our own otpauth URI, no user text in it. Its
                # English <title> is left out: the page names the figure in its language.
                "qr_svg": Markup(_SVG_TITLE.sub("", self.qr_svg)),  # noqa: S704
                # "Open in authenticator app" on the phone that has the app.
                "otpauth_uri": self.otpauth_uri,
                "setup_ticket": setup_ticket(self.secret),
                "apps": AUTHENTICATOR_APPS}


def _spent(row: MethodRow, now: datetime, window_end: int) -> CodeAlreadyUsed:
    """The answer to a right code whose step is at or before ``last_step``."""
    last = row.last_step
    if last is None or last <= window_end:
        # The step (or a later one) was accepted already: a double submit or a retry,
        # which must not count toward the lock.
        return CodeAlreadyUsed("This code was already used: wait for the next one.")
    # ``last_step`` is beyond the window: a coming step burnt by a drift hint. The code
    # is right (the device clock is now in time) and must not count either; codes work
    # again once that step has passed.
    wait = max(1, (last + 1) * STEP_SECONDS - int(now.timestamp()))
    return CodeAlreadyUsed(
        f"Codes until about {-(-wait // 60)} minute(s) from now cannot be used: they were "
        f"spent when a code from a device clock that was ahead was refused. Your clock is "
        f"right now; wait, then enter a new code.", retry_after=wait)


def _aad(user_id: str, method_id: str) -> bytes:
    return f"totp:{user_id}:{method_id}".encode()


class TotpMethod:
    type = "totp"
    login_fallback = False

    def _secret(self, ctx: MethodContext, row: MethodRow) -> str:
        assert row.secret_kid is not None and row.secret_ct is not None
        return ctx.keyring.decrypt(row.secret_kid, row.secret_ct, _aad(row.user_id, row.id)
                                   ).decode()

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart:
        row = await pending_row(ctx, user, self.type, already_enabled=(
            "The authenticator app is already enabled. Disable it first."))
        secret = new_secret()
        row.secret_kid, row.secret_ct = ctx.keyring.encrypt(secret.encode(),
                                                            _aad(user.id, row.id))
        row.last_step = None
        await ctx.db.flush()
        return EnrollmentStart(await self._setup(ctx, user, secret))

    async def _setup(self, ctx: MethodContext, user: User, secret: str) -> TotpSetup:
        # The label in the user's authenticator app: the portal they know.
        issuer = ctx.adapter.issuer(await apps.get_app(ctx.db, user.app_id))
        uri = ctx.adapter.otpauth_uri(provisioning_uri(secret, issuer, user.email), user)
        return TotpSetup(secret, uri, ctx.adapter.totp_qr_svg(uri))

    async def setup_again(self, ctx: MethodContext, user: User, row: MethodRow,
                          ticket: str) -> TotpSetup | None:
        """The same set-up (key, QR code) of a *pending* enrollment, read from its sealed
        seed, for the holder of its ``setup_ticket``; None otherwise. An enabled method
        never shows its seed again."""
        if (row.status != MethodStatus.PENDING or row.user_id != user.id
                or row.secret_ct is None or not ticket):
            return None
        secret = self._secret(ctx, row)
        if not same(setup_ticket(secret), ticket):
            return None
        return await self._setup(ctx, user, secret)

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        return None  # the first valid code, already checked, is all the app must prove

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None:
        return None  # the app makes its own codes

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified:
        # A TOTP code proves possession at a moment; it is not tied to a purpose, but a
        # step spent on one purpose cannot be spent again on another.
        code = normalise_numeric_code(proof, DIGITS)
        if code is None:
            raise InvalidCode("Enter the 6-digit code from your authenticator app.")
        secret = self._secret(ctx, row)
        now = ctx.clock.now()
        now_step = time_step(now)
        window = ctx.settings.totp_window
        step = match_step(secret, code, now_step, window)
        if step is None:
            await self._refuse(ctx, row, secret, code, now_step)
        # The conditional UPDATE, or handed to the audit event where it may ride in its
        # statement (store/step_spends.py).
        if not await step_spends.spend_step(ctx.db, row, step, now):
            raise _spent(row, now, now_step + window)
        return Verified()

    async def _refuse(self, ctx: MethodContext, row: MethodRow, secret: str, code: str,
                      now_step: int) -> NoReturn:
        """A wrong code, with a hint when it is the code of a step near the window.

        The hint tells whoever typed the code that it is the code of a coming step: a
        guess it confirms. So the step it names is burnt first — ``last_step`` moves to
        it by the conditional UPDATE of single use — and that code, like every step
        before it, never works. Past steps never come back into the window and a
        method being enrolled shows its seed to the caller: neither needs it.
        """
        window = ctx.settings.totp_window
        found = drifted_step(secret, code, now_step, window, ctx.settings.totp_drift_steps)
        if found is None:
            raise InvalidCode()
        if found > now_step and row.status == MethodStatus.ENABLED:
            # last_used_at is left as it was: nothing was used.
            await queries.advance_counter(ctx.db, row, found, row.last_used_at or ctx.clock.now())
        # Told by the catalogue (domain/texts.py: invalid_code.clock_ahead/behind).
        raise InvalidCode(extra={"clock_drift_minutes": step_minutes(found - now_step)})

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None:
        await queries.delete_method(ctx.db, row.id)

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView:
        return row_view(ctx.settings, self.type, row)


DESCRIPTOR = Descriptor(
    type="totp", order=10,
    name=N_("Authenticator app"), notice_name=N_("Authenticator app"),
    blurb=N_("Six-digit codes made by an app on your phone (Google Authenticator, "
             "Microsoft Authenticator and others)."),
    code_hint=N_("The 6-digit code from your authenticator app."),
    disable_intro=N_("Enter a current code from your authenticator app, and then click "
                     "Disable."),
    templates=Path(__file__).parent / "templates",
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable the authenticator app"),
        "disable": N_("Disable the authenticator app"),
        "enabled": N_("The authenticator app is enabled."),
        "disabled": N_("The authenticator app is disabled."),
        "switched": N_("The protection settings of the authenticator app were saved."),
        "notice_enabled": N_("The authenticator app was enabled on your account."),
        "notice_disabled": N_("The authenticator app was disabled on your account."),
        "notice_switched": N_("Protection settings changed for the authenticator app. Protected"
                              " now: %(protects)s."),
        "notice_locked": N_("The authenticator app is locked for %(duration)s after too many "
                            "wrong attempts."),
        "switch_on": N_("Once this is on, you will be asked for a code from your authenticator "
                        "app when you confirm this operation."),
        "switch_off": N_("A code from your authenticator app will no longer be asked for on "
                         "this operation."),
        "prompt": N_("Open your authenticator app and enter the code it shows."),
    },
)
METHOD = TotpMethod()
