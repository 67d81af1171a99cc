"""The answers of the StepUp integration API, as frozen dataclasses.

Times are timezone-aware :class:`datetime.datetime` values (UTC). Secrets (a TOTP secret,
its URI and QR code, backup codes) are left out of ``repr()`` so they do not end up in a
log by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Challenge",
    "Enrollment",
    "Method",
    "Operation",
    "OperationMethod",
    "User",
    "Verification",
]


class MalformedAnswer(ValueError):
    """An answer that does not have the shape the API promises."""


@dataclass(frozen=True, slots=True)
class User:
    """A StepUp user; ``created`` is False when an existing user was returned."""

    id: str
    email: str
    language: str
    verification_grade: int
    external_id: str | None = None
    created: bool = False

    @classmethod
    def from_json(cls, data: Any, *, created: bool) -> User:
        d = _obj(data)
        return cls(id=_str(d, "id"), email=_str(d, "email"), language=_str(d, "language"),
                   verification_grade=_int(d, "verification_grade"),
                   external_id=_opt_str(d, "external_id"), created=created)


@dataclass(frozen=True, slots=True)
class Method:
    """One authentication method of a user, enabled or not."""

    type: str
    enabled: bool
    protects: Mapping[str, bool]
    available: bool = True
    pending: bool = False
    destination: str | None = None
    remaining: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> Method:
        d = _obj(data)
        protects = _obj(d.get("protects", {}))
        return cls(type=_str(d, "type"), enabled=_bool(d, "enabled"),
                   protects={str(k): bool(v) for k, v in protects.items()},
                   available=bool(d.get("available", True)), pending=bool(d.get("pending")),
                   destination=_opt_str(d, "destination"), remaining=_opt_int(d, "remaining"),
                   created_at=_opt_dt(d, "created_at"),
                   last_used_at=_opt_dt(d, "last_used_at"))


@dataclass(frozen=True, slots=True)
class Enrollment:
    """The start of an enrollment.

    * ``totp``: ``secret``, ``otpauth_uri`` and ``qr_svg`` to show the user; then
      :meth:`confirm_enrollment` with a code from the app.
    * ``backup_codes``: ``codes`` (shown once; the method is enabled at once).
    * ``sms``, ``email``, ``whatsapp``: a code was sent to ``sent_to``; it expires in
      ``expires_in`` seconds and a new one can be asked for in ``resend_in`` seconds.
    """

    method: str
    secret: str | None = field(default=None, repr=False)
    otpauth_uri: str | None = field(default=None, repr=False)
    qr_svg: str | None = field(default=None, repr=False)
    codes: tuple[str, ...] = field(default=(), repr=False)
    sent_to: str | None = None
    expires_in: int | None = None
    resend_in: int | None = None

    @classmethod
    def from_json(cls, data: Any, *, method: str) -> Enrollment:
        d = _obj(data)
        codes = d.get("codes", [])
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise MalformedAnswer("codes")
        return cls(method=method, secret=_opt_str(d, "secret"),
                   otpauth_uri=_opt_str(d, "otpauth_uri"), qr_svg=_opt_str(d, "qr_svg"),
                   codes=tuple(codes), sent_to=_opt_str(d, "sent_to"),
                   expires_in=_opt_int(d, "expires_in"), resend_in=_opt_int(d, "resend_in"))


@dataclass(frozen=True, slots=True)
class Challenge:
    """A code was sent to ``sent_to`` (masked)."""

    sent_to: str
    expires_in: int
    resend_in: int
    method: str | None = None

    @classmethod
    def from_json(cls, data: Any, *, method: str | None = None) -> Challenge:
        d = _obj(data)
        return cls(sent_to=_str(d, "sent_to"), expires_in=_int(d, "expires_in"),
                   resend_in=_int(d, "resend_in"), method=_opt_str(d, "method") or method)


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
        d = _obj(data)
        return cls(valid=_bool(d, "valid"), method=_str(d, "method"),
                   verified_at=_dt(d, "verified_at"), receipt=_opt_str(d, "receipt"),
                   backup_codes_remaining=_opt_int(d, "backup_codes_remaining"))


@dataclass(frozen=True, slots=True)
class OperationMethod:
    """A method that can confirm an operation, with its masked destination."""

    type: str
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """A protected operation (e.g. a withdrawal). ``status``: ``pin_required``,
    ``code_required``, ``confirmed`` or ``expired``."""

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
        d = _obj(data)
        methods = d.get("methods") or []
        if not isinstance(methods, list):
            raise MalformedAnswer("methods")
        return cls(id=_str(d, "id"), type=_str(d, "type"), status=_str(d, "status"),
                   summary=_str(d, "summary"),
                   details={str(k): str(v) for k, v in _obj(d.get("details", {})).items()},
                   expires_at=_dt(d, "expires_at"),
                   methods=tuple(OperationMethod(type=_str(m, "type"),
                                                 destination=_opt_str(m, "destination"))
                                 for m in map(_obj, methods)),
                   receipt=_opt_str(d, "receipt"), method=_opt_str(d, "method"),
                   confirmed_at=_opt_dt(d, "confirmed_at"))


# --- reading JSON without trusting its shape -------------------------------------------

def _obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedAnswer("expected an object")
    return value


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise MalformedAnswer(key)
    return value


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    return None if d.get(key) is None else _str(d, key)


def _int(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedAnswer(key)
    return value


def _opt_int(d: Mapping[str, Any], key: str) -> int | None:
    return None if d.get(key) is None else _int(d, key)


def _bool(d: Mapping[str, Any], key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise MalformedAnswer(key)
    return value


def _dt(d: Mapping[str, Any], key: str) -> datetime:
    try:
        return datetime.fromisoformat(_str(d, key))
    except ValueError as exc:
        raise MalformedAnswer(key) from exc


def _opt_dt(d: Mapping[str, Any], key: str) -> datetime | None:
    return None if d.get(key) is None else _dt(d, key)
