"""The answers of the StepUp integration API, as frozen dataclasses, and :class:`EndUser`
(the person at the keyboard, forwarded with a call).

Times are timezone-aware :class:`datetime.datetime` values (UTC). Secrets (a TOTP secret,
its URI and QR code, backup codes) are left out of ``repr()`` so they do not end up in a
log by accident. The lifecycle's other answers (events, recovery, webhooks) are in
:mod:`stepup_client.records`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stepup_client import _json as j
from stepup_client._json import MalformedAnswer

__all__ = [
    "Challenge",
    "EndUser",
    "Enrollment",
    "Identities",
    "Locks",
    "MalformedAnswer",
    "Method",
    "Operation",
    "OperationMethod",
    "Passkey",
    "User",
    "UsersPage",
    "Verification",
]

USER_AGENT_MAX = 512


@dataclass(frozen=True, slots=True)
class EndUser:
    """Your end user, as your portal sees them: sent as ``StepUp-End-User-IP`` and
    ``StepUp-End-User-Agent`` for StepUp's per-address caps, new-device checks, notices
    and audit log. ``ip`` must be an IPv4 or IPv6 address (``ValueError`` otherwise);
    ``user_agent`` is sent as printable ASCII (other characters become ``?``), at most
    512 characters."""

    ip: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.ip is not None:
            try:
                object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip.strip())))
            except ValueError:
                raise ValueError("EndUser.ip must be an IPv4 or IPv6 address") from None
        if self.user_agent is not None:
            agent = "".join(c if " " <= c <= "~" else "?" for c in self.user_agent)
            object.__setattr__(self, "user_agent", agent.strip()[:USER_AGENT_MAX] or None)

    def headers(self) -> dict[str, str]:
        out = {}
        if self.ip:
            out["StepUp-End-User-IP"] = self.ip
        if self.user_agent:
            out["StepUp-End-User-Agent"] = self.user_agent
        return out


@dataclass(frozen=True, slots=True)
class Identities:
    email_verified: bool
    phone_verified: bool


@dataclass(frozen=True, slots=True)
class Locks:
    """The locks that hold now, each with the instant it ends: ``account``, ``pin`` and
    ``methods`` (type → instant)."""

    account: datetime | None = None
    pin: datetime | None = None
    methods: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Locks:
        d = j.obj(data)
        return cls(account=j.opt_instant(d, "account"), pin=j.opt_instant(d, "pin"),
                   methods=j.instants(d, "methods"))


@dataclass(frozen=True, slots=True)
class Passkey:
    """One of the user's passkeys (method ``webauthn``)."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> Passkey:
        d = j.obj(data)
        return cls(id=j.string(d, "id"), name=j.string(d, "name"),
                   created_at=j.instant(d, "created_at"),
                   last_used_at=j.opt_instant(d, "last_used_at"))


@dataclass(frozen=True, slots=True)
class Method:
    """One authentication method of a user, enabled or not. ``passkeys`` is set for
    ``webauthn``."""

    type: str
    enabled: bool
    protects: Mapping[str, bool]
    available: bool = True
    pending: bool = False
    destination: str | None = None
    remaining: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    passkeys: tuple[Passkey, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> Method:
        d = j.obj(data)
        protects = j.obj(d.get("protects", {}))
        keys = d.get("passkeys")
        return cls(type=j.string(d, "type"), enabled=j.boolean(d, "enabled"),
                   protects={str(k): bool(v) for k, v in protects.items()},
                   available=bool(d.get("available", True)), pending=bool(d.get("pending")),
                   destination=j.opt_str(d, "destination"), remaining=j.opt_int(d, "remaining"),
                   created_at=j.opt_instant(d, "created_at"),
                   last_used_at=j.opt_instant(d, "last_used_at"),
                   passkeys=None if keys is None
                   else tuple(Passkey.from_json(p) for p in j.items(d, "passkeys")))


@dataclass(frozen=True, slots=True)
class User:
    """A StepUp user. ``created`` is True only when :meth:`create_user` made it. The
    reads (``get_user``, ``find_user``, ``list_users``) also fill ``created_at``,
    ``identities``, ``methods`` (the enabled ones, with what they protect) and ``locks``."""

    id: str
    email: str
    language: str
    verification_grade: int
    external_id: str | None = None
    created: bool = False
    created_at: datetime | None = None
    identities: Identities | None = None
    methods: tuple[Method, ...] = ()
    locks: Locks | None = None

    @classmethod
    def from_json(cls, data: Any, *, created: bool = False) -> User:
        d = j.obj(data)
        ids = j.opt_obj(d, "identities")
        locks = d.get("locks")
        return cls(id=j.string(d, "id"), email=j.string(d, "email"),
                   language=j.string(d, "language"),
                   verification_grade=j.integer(d, "verification_grade"),
                   external_id=j.opt_str(d, "external_id"), created=created,
                   created_at=j.opt_instant(d, "created_at"),
                   identities=None if ids is None else Identities(
                       email_verified=j.boolean(ids, "email_verified"),
                       phone_verified=j.boolean(ids, "phone_verified")),
                   methods=tuple(Method.from_json(m) for m in j.items(d, "methods")),
                   locks=None if locks is None else Locks.from_json(locks))


@dataclass(frozen=True, slots=True)
class UsersPage:
    """One page of your app's users; ``next_cursor`` is None on the last page."""

    users: tuple[User, ...]
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> UsersPage:
        d = j.obj(data)
        return cls(users=tuple(User.from_json(u) for u in j.items(d, "users")),
                   next_cursor=j.opt_str(d, "next_cursor"))


@dataclass(frozen=True, slots=True)
class Enrollment:
    """The start of an enrollment (or a new set of backup codes).

    * ``totp``: ``secret``, ``otpauth_uri`` and ``qr_svg`` to show the user; then
      :meth:`confirm_enrollment` with a code from the app.
    * ``backup_codes``: ``codes`` (shown once; the method is enabled at once).
    * ``sms``, ``email``, ``whatsapp``: a code was sent to ``sent_to``; it expires in
      ``expires_in`` seconds and a new one can be asked for in ``resend_in`` seconds.
    * ``webauthn``: ``options`` for ``navigator.credentials.create({publicKey})``.
    """

    method: str
    secret: str | None = field(default=None, repr=False)
    otpauth_uri: str | None = field(default=None, repr=False)
    qr_svg: str | None = field(default=None, repr=False)
    codes: tuple[str, ...] = field(default=(), repr=False)
    sent_to: str | None = None
    expires_in: int | None = None
    resend_in: int | None = None
    options: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Any, *, method: str) -> Enrollment:
        d = j.obj(data)
        return cls(method=method, secret=j.opt_str(d, "secret"),
                   otpauth_uri=j.opt_str(d, "otpauth_uri"), qr_svg=j.opt_str(d, "qr_svg"),
                   codes=j.strings(d, "codes"), sent_to=j.opt_str(d, "sent_to"),
                   expires_in=j.opt_int(d, "expires_in"), resend_in=j.opt_int(d, "resend_in"),
                   options=j.opt_obj(d, "options"))


@dataclass(frozen=True, slots=True)
class Challenge:
    """A code was sent to ``sent_to`` (masked); for a passkey, ``options`` are for
    ``navigator.credentials.get({publicKey})``."""

    sent_to: str
    expires_in: int
    resend_in: int
    method: str | None = None
    options: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Any, *, method: str | None = None) -> Challenge:
        d = j.obj(data)
        return cls(sent_to=j.string(d, "sent_to"), expires_in=j.integer(d, "expires_in"),
                   resend_in=j.integer(d, "resend_in"), method=j.opt_str(d, "method") or method,
                   options=j.opt_obj(d, "options"))


@dataclass(frozen=True, slots=True)
class Verification:
    """A code was right. ``receipt`` is the signed receipt when the purpose was an
    operation; ``backup_codes_remaining`` is set when a backup code was used."""

    valid: bool
    method: str
    verified_at: datetime
    receipt: str | None = None
    backup_codes_remaining: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Verification:
        d = j.obj(data)
        return cls(valid=j.boolean(d, "valid"), method=j.string(d, "method"),
                   verified_at=j.instant(d, "verified_at"), receipt=j.opt_str(d, "receipt"),
                   backup_codes_remaining=j.opt_int(d, "backup_codes_remaining"))


@dataclass(frozen=True, slots=True)
class OperationMethod:
    """A method that can confirm an operation, with its masked destination."""

    type: str
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """A protected operation (e.g. a withdrawal). ``status``: ``pin_required``,
    ``code_required``, ``confirmed`` or ``expired``. ``details`` are canonical: exactly
    what the receipt will carry."""

    id: str
    type: str
    status: str
    summary: str
    details: Mapping[str, str]
    expires_at: datetime
    methods: tuple[OperationMethod, ...] = ()
    receipt: str | None = None
    method: str | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> Operation:
        d = j.obj(data)
        return cls(id=j.string(d, "id"), type=j.string(d, "type"),
                   status=j.string(d, "status"), summary=j.string(d, "summary"),
                   details={str(k): str(v) for k, v in j.obj(d.get("details", {})).items()},
                   expires_at=j.instant(d, "expires_at"),
                   methods=tuple(OperationMethod(type=j.string(m, "type"),
                                                 destination=j.opt_str(m, "destination"))
                                 for m in map(j.obj, j.items(d, "methods"))),
                   receipt=j.opt_str(d, "receipt"), method=j.opt_str(d, "method"),
                   confirmed_at=j.opt_instant(d, "confirmed_at"))
