"""The Method protocol: the five questions every method answers.

Services never branch on a method's type: they ask the registry for the method and call
these. ``purpose`` says what a code is for; a code issued for one purpose never serves
another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.config import Settings
from stepup.delivery.base import OutgoingMessage, ProviderFactory
from stepup.domain.clock import Clock
from stepup.domain.errors import MethodAlreadyEnabled
from stepup.domain.hashing import Hasher, new_id
from stepup.domain.keyring import KeyRing
from stepup.domain.policy import MethodStatus, Purpose
from stepup.domain.sealing import DestinationSeal
from stepup.store import queries
from stepup.store.models import PORTAL_APP_ID, STAFF_APP_ID, App, User
from stepup.store.models import Method as MethodRow

if TYPE_CHECKING:
    from stepup.adapter import Adapter


def N_(message: str) -> str:  # the gettext "mark only" convention (babel.cfg extracts it)
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class InputHints:
    """How the page's code field is drawn for the method's proof."""

    inputmode: str = "numeric"
    maxlength: int = 9
    autocapitalize: bool = True


#: The sentences every method words for itself (``Descriptor.sentences``), and where each
#: is read. ``to_enable``/``to_manage`` only for a method that sends codes; ``prompt`` only
#: where the generic login prompt does not fit.
SENTENCES: dict[str, str] = {
    "enable": "the title of its set-up pages (\"Enable SMS codes\")",
    "disable": "the title of its Disable form",
    "enabled": "the notice on the methods page after it was enabled",
    "disabled": "the notice on the methods page after it was disabled",
    "switched": "the notice after its protection switches were saved",
    "notice_enabled": "the security notice sent when it was enabled",
    "notice_disabled": "the security notice sent when it was disabled",
    "notice_switched": "the security notice of a switch (%(protects)s: what it protects now)",
    "notice_locked": "the security notice of a lock (%(duration)s)",
    "switch_on": "the lead of the form that turns its protection of an operation on",
    "switch_off": "the lead of the form that turns it off",
}
SENDING_SENTENCES: dict[str, str] = {
    "to_enable": "what a code message is for while enabling it (\"to enable SMS codes\")",
    "to_manage": "what a code message is for while changing or disabling it",
}


#: What is said of a method that has no sentence of its own for a key (an operator's
#: method that did not word them): its name in a generic sentence, as before.
GENERIC_SENTENCES: dict[str, str] = {
    "enable": N_("Enable %(method)s"),
    "disable": N_("Disable %(method)s"),
    "enabled": N_("%(method)s is enabled."),
    "disabled": N_("%(method)s is disabled."),
    "switched": N_("The protection settings of %(method)s were saved."),
    "notice_enabled": N_("Sign-in method enabled: %(method)s."),
    "notice_disabled": N_("Sign-in method disabled: %(method)s."),
    "notice_switched": N_("Protection settings changed for %(method)s. Protected now: "
                          "%(protects)s."),
    "notice_locked": N_("Locked for %(duration)s after too many wrong attempts: "
                        "%(method)s."),
    "switch_on": N_("Once this is on, you will be asked for a code from %(method)s when "
                    "you confirm this operation."),
    "switch_off": N_("%(method)s will no longer be asked for on this operation."),
    "to_enable": N_("to enable %(method)s"),
    "to_manage": N_("to change or disable %(method)s"),
    "prompt": N_("Open %(method)s and enter the code it shows."),
}


def sentence(d: Descriptor | None, key: str) -> tuple[str, bool]:
    """The untranslated sentence for ``key`` about the method of ``d``, and whether it is
    the generic one (which takes the method's name as ``%(method)s``)."""
    own = d.sentences.get(key) if d is not None else None
    return (own, False) if own is not None else (GENERIC_SENTENCES[key], True)


@dataclass(frozen=True)
class Descriptor:
    """What every layer above the method needs to know about it, in one place.

    Names are marked with ``N_`` (Babel extracts them) and translated where shown.
    """

    type: str
    order: int
    name: str  # the method's name on the pages ("SMS")
    notice_name: str  # its name in security notices ("SMS codes")
    blurb: str  # one sentence on the Authentication methods page
    #: Out-of-band: its challenge sends a code by ``channel`` (None: shows its own proof).
    sends_codes: bool = False
    #: The channel's name in the code messages ("to enable %(method)s"): "e-mail codes".
    channel_name: str | None = None
    #: The channel's word in English details ("by SMS") and its label in the outbox.
    channel_word: str | None = None
    channel_label: str | None = None
    #: The shape of its code message (delivery/messages.py): a text message with the
    #: autofill line, a chat message, or an e-mail with a subject and an HTML part.
    message_format: Literal["text", "chat", "mail"] | None = None
    #: The destination its enrollment form asks for.
    destination: Literal["phone", "email"] | None = None
    #: Builds the provider that carries its codes from the settings (delivery/).
    provider: ProviderFactory | None = None
    #: Each of its messages is billed to the operator (SMS, WhatsApp): counted against
    #: the hourly budget of all apps together (STEPUP_SMS_BUDGET_PER_HOUR).
    billed: bool = False
    #: True when the method can stand in for any login method (backup codes).
    login_fallback: bool = False
    #: The proof is a browser ceremony (a passkey): the page asks for options first.
    browser_ceremony: bool = False
    #: The proof's own label where it is not "a code from <name>" ("Backup code").
    proof_label: str | None = None
    #: Enabling it verifies the account's phone (the profile shows it; disabling unverifies).
    verifies_phone: bool = False
    #: The hint under the code field ("The 6-digit code from the SMS we sent you.").
    code_hint: str | None = None
    #: The lead of step 1 of its set-up, for a method that sends codes.
    setup_intro: str | None = None
    #: Its own line on the Disable form, where the general one does not fit.
    disable_intro: str | None = None
    hints: InputHints = field(default_factory=InputHints)
    #: Whole sentences about the method, keyed as SENTENCES lists them ("SMS codes are
    #: enabled."): a method's name is never spliced into a sentence, so each language can
    #: word each method as its grammar needs (gender, number, case).
    sentences: Mapping[str, str] = field(default_factory=dict)
    #: Its templates (``<type>/setup.html``, ``prompt.html``, ``card.html``, …), where it
    #: has any; the pages fall back on ``web/templates/method/`` for the others.
    templates: Path | None = None


@dataclass
class MethodContext:
    """What a method may use: the open transaction and the service's tools."""

    db: AsyncSession
    settings: Settings
    clock: Clock
    keyring: KeyRing
    hasher: Hasher
    run_cpu: Any  # async callable: await run_cpu(fn, *args) runs fn off the event loop
    destinations: DestinationSeal  # phones and e-mail addresses at rest
    adapter: Adapter  # the operator's overrides: issuer, QR code, policy hooks
    ip: str | None = None  # the client's address, for per-IP send caps
    # Slow hashes of the proof by salt, made before the write transaction opened
    # (services/verification.prepare): a method that needs one finds it here.
    prepared: dict[bytes, bytes] = field(default_factory=dict)


@runtime_checkable
class PreparesProof(Protocol):
    """An ability: checking a proof costs a slow hash per salt (argon2). The service
    reads the salts and hashes the proof with no transaction open, so no write lock is
    held while hashing; ``verify`` then finds the digests in ``ctx.prepared``."""

    async def proof_salts(self, db: AsyncSession, user_id: str) -> Sequence[bytes]: ...

    def proof_hash(self, hasher: Hasher, proof: str, salt: bytes) -> bytes | None:
        """The slow hash of ``proof`` with ``salt``; None when the proof is malformed."""
        ...


@runtime_checkable
class IssuesCodeSets(Protocol):
    """An ability: the method's proof is a printed set of codes, replaced as a whole
    (backup codes: Regenerate)."""

    async def issue_set(self, ctx: MethodContext, user: User) -> list[str]:
        """Replace the user's codes with a new set; returns the codes, formatted."""
        ...

    async def codes_left(self, db: AsyncSession, user_id: str) -> int:
        """How many codes of the set are unused (none left: it cannot log in)."""
        ...


@runtime_checkable
class HoldsSeveralCredentials(Protocol):
    """An ability: one method, any number of credentials (passkeys): one more is added
    with ``begin_add`` and proved for ``add_purpose``; each is listed, renamed, removed."""

    type: str
    add_purpose: Purpose

    async def begin_add(self, ctx: MethodContext, user: User) -> PasskeyOptions:
        """What the user needs to make one more credential (the browser's options)."""
        ...

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None: ...


@runtime_checkable
class ChecksDestination(Protocol):
    """An ability: the destination a set-up names (a phone number, an e-mail address)
    can be checked on its own, before the PIN is asked — the very check
    ``begin_enrollment`` makes, with nothing sent or written."""

    def destination(self, ctx: MethodContext, user: User, params: dict[str, Any]) -> str:
        """The destination in its stored form, or ``ValidationFailed`` saying why not."""
        ...


@runtime_checkable
class ShowsSetupAgain(Protocol):
    """An ability: the set-up of a *pending* enrollment (a TOTP key and QR code) can be
    shown again, so that a mistyped code does not start it over with a new secret —
    only to its owner, who proves with ``ticket`` (a value of the set-up page, never the
    secret itself) that it was shown to them. An enabled method never shows it again."""

    async def setup_again(self, ctx: MethodContext, user: User, row: MethodRow,
                          ticket: str) -> EnrollmentBody | None:
        """The same set-up again, read from the pending row; None when ``row`` is not
        pending or ``ticket`` is not the set-up's."""
        ...


class EnrollmentBody(Protocol):
    """What the user needs to finish enrolling, as a typed value: a dataclass whose fields
    are its answer in the API (the web layer serialises every one the same way), and
    which says what its set-up page shows."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def page_context(self) -> dict[str, Any]:
        """The variables of the method's set-up page (``<type>/setup.html``)."""
        ...


@dataclass(frozen=True)
class CodesIssued:
    """A set of codes to show once (backup codes); the method is enabled already."""

    codes: list[str]

    def page_context(self) -> dict[str, Any]:
        return {"codes": list(self.codes)}


@dataclass(frozen=True)
class CodeSent:
    """A code is on its way to ``sent_to`` (out-of-band); the user enters it to confirm."""

    sent_to: str
    expires_in: int
    resend_in: int

    def page_context(self) -> dict[str, Any]:
        return {"sent_to": self.sent_to, "expires_in": self.expires_in,
                "resend_in": self.resend_in}


@dataclass(frozen=True)
class PasskeyOptions:
    """The browser's options for ``navigator.credentials.create`` (a passkey to make)."""

    options: dict[str, Any]
    expires_in: int

    def page_context(self) -> dict[str, Any]:
        return {"options": self.options}


@dataclass
class EnrollmentStart:
    """What the user needs to finish enrolling (``body``). ``enabled``: no confirmation
    is needed, the method is on; ``challenge``: a code was made and waits to be
    delivered; neither: the user confirms with what ``body`` holds. How that reads in
    HTTP is the web layer's business."""

    body: EnrollmentBody
    enabled: bool = False
    challenge: ChallengeSent | None = None  # out-of-band: the first code to deliver


@dataclass
class ChallengeSent:
    """A code made and waiting to be delivered (the service sends it after commit)."""

    sent_to: str
    expires_in: int
    resend_in: int
    outgoing: OutgoingMessage | None = None
    code_id: str | None = None
    # Send-cap counters charged for this code: refunded if delivery fails.
    charges: list[tuple[str, datetime]] = field(default_factory=list)
    # Passkeys: the browser's publicKey request options (nothing is sent).
    options: dict[str, Any] | None = None


@dataclass
class Verified:
    """A successful verification; ``notes`` carries facts worth telling (codes left)."""

    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodView:
    type: str
    enabled: bool
    protects: dict[str, bool]
    available: bool = True
    pending: bool = False
    destination: str | None = None
    remaining: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    # Passkeys: each one's id, name, created_at and last_used_at.
    passkeys: list[dict[str, Any]] | None = None


class Method(Protocol):
    type: str
    #: True when the method can stand in for any login method (backup codes).
    login_fallback: bool

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart: ...

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        """Finish enrolling once ``verify`` accepted ``proof`` for the enroll purpose."""

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None: ...

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified: ...

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None: ...

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView: ...


async def pending_row(ctx: MethodContext, user: User, method_type: str, *,
                      already_enabled: str) -> MethodRow:
    """The method's row to enrol into: the pending one, or a new pending one; Conflict
    (``already_enabled``) when the method is enabled."""
    row = await queries.get_method(ctx.db, user.id, method_type)
    if row is not None and row.status == MethodStatus.ENABLED:
        raise MethodAlreadyEnabled(already_enabled)
    if row is None:
        row = MethodRow(id=new_id(), user_id=user.id, type=method_type, status=MethodStatus.PENDING,
                        protects={}, created_at=ctx.clock.now())
        ctx.db.add(row)
    return row


def row_view(settings: Settings, method_type: str, row: MethodRow | None, **extra: Any
             ) -> MethodView:
    """What every method shows of its row: enabled or pending, its switches, its dates;
    ``extra`` adds the method's own (a masked destination, codes remaining)."""
    enabled = row is not None and row.status == MethodStatus.ENABLED
    return MethodView(
        type=method_type, enabled=enabled,
        protects=protects_view(settings, row if enabled else None),
        pending=row is not None and row.status == MethodStatus.PENDING,
        created_at=row.enabled_at if enabled and row else None,
        last_used_at=row.last_used_at if enabled and row else None, **extra)


def protects_view(settings: Settings, row: MethodRow | None) -> dict[str, bool]:
    """The On/Off switch of every configured operation for a method row."""
    stored = row.protects if row is not None else {}
    return {op: bool(stored.get(op, False)) for op in settings.operations}


def speaks_for(settings: Settings, app: App | None) -> tuple[str, str]:
    """The name and address a user's codes and set-up come from: StepUp's (``ISSUER``,
    ``PUBLIC_URL``) for its own pages' people, else their app's display name and URL —
    a portal's users know the portal, not StepUp."""
    if app is None or app.id == PORTAL_APP_ID:
        return settings.issuer, settings.public_url
    if app.id == STAFF_APP_ID:  # the support staff know the console by StepUp's name
        return f"{settings.issuer} support", settings.public_url
    return app.display_name, app.url or settings.public_url
