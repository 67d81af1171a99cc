"""Exceptions: one class per problem ``code`` of the StepUp API (RFC 9457 documents).

Every exception the client raises for a StepUp answer or a transport failure is a
:class:`StepUpError`; catch a subclass for the cases your portal handles differently::

    try:
        stepup.verify(user_id, "totp", code)
    except InvalidCode:
        ...  # "That code is not right"
    except MethodLocked as e:
        ...  # "Too many attempts; try again in {e.retry_after} s"
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "AccountLocked",
    "CodeExpired",
    "Conflict",
    "DeliveryFailed",
    "Forbidden",
    "InvalidCode",
    "InvalidCredentials",
    "MethodLocked",
    "MethodNotEnabled",
    "NotAuthenticated",
    "NotFound",
    "PinInvalid",
    "RateLimited",
    "SecondFactorRequired",
    "StepUpError",
    "StepUpUnavailable",
    "ValidationError",
    "error_class",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class StepUpError(Exception):
    """An error answer from StepUp (or no answer at all, see :class:`StepUpUnavailable`).

    ``status`` is the HTTP status (0 when no answer came), ``code`` the problem's stable
    machine word, ``retry_after`` the seconds to wait (locks, rate limits), ``field`` the
    request field at fault when StepUp names one, and ``problem`` the whole document
    (for extra members such as ``errors`` or ``clock_drift_minutes``).
    """

    def __init__(self, status: int, code: str, title: str, detail: str,
                 retry_after: int | None = None, field: str | None = None, *,
                 problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code} ({status}): {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        self.field = field
        self.problem: Mapping[str, Any] = MappingProxyType(dict(problem)) if problem else _EMPTY

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
                f"detail={self.detail!r}, retry_after={self.retry_after!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.status, self.code, self.title, self.detail,
                           self.retry_after, self.field, dict(self.problem)))


def _rebuild(cls: type[StepUpError], status: int, code: str, title: str, detail: str,
             retry_after: int | None, field: str | None,
             problem: dict[str, Any]) -> StepUpError:
    return cls(status, code, title, detail, retry_after, field, problem=problem)


class StepUpUnavailable(StepUpError):
    """StepUp could not be reached (connection refused, timeout, TLS failure...) or said
    it cannot serve now (``service_unavailable``, or a gateway error from a proxy).
    ``status`` is 0 when no answer came at all. Whether a code was consumed is unknown."""


class ValidationError(StepUpError):
    """``validation_error`` (422): the request is not valid; see ``field`` /
    ``problem["errors"]``."""


class InvalidCredentials(StepUpError):
    """``invalid_credentials`` (401)."""


class NotAuthenticated(StepUpError):
    """``not_authenticated`` (401): the API key is missing, wrong or revoked."""


class Forbidden(StepUpError):
    """``forbidden`` (403): the key's role or scopes do not allow this call."""


class NotFound(StepUpError):
    """``not_found`` (404): no such user, method or operation."""


class Conflict(StepUpError):
    """``conflict`` (409): e.g. a method already enabled, an operation already confirmed."""


class InvalidCode(StepUpError):
    """``invalid_code`` (400): wrong, already used, or for another purpose."""


class CodeExpired(StepUpError):
    """``code_expired`` (400): ask for a new code."""


class PinInvalid(StepUpError):
    """``pin_invalid`` (400)."""


class MethodLocked(StepUpError):
    """``method_locked`` (423): too many wrong codes; ``retry_after`` seconds to wait."""


class AccountLocked(StepUpError):
    """``account_locked`` (423): ``retry_after`` seconds to wait."""


class MethodNotEnabled(StepUpError):
    """``method_not_enabled`` (409): the user has not enabled this method."""


class SecondFactorRequired(StepUpError):
    """``second_factor_required`` (401)."""


class RateLimited(StepUpError):
    """``rate_limited`` (429): ``retry_after`` seconds to wait (``Retry-After``)."""


class DeliveryFailed(StepUpError):
    """``delivery_failed`` (502): the SMS, e-mail or WhatsApp message could not be sent."""


_BY_CODE: Mapping[str, type[StepUpError]] = MappingProxyType({
    "validation_error": ValidationError,
    "invalid_credentials": InvalidCredentials,
    "not_authenticated": NotAuthenticated,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "invalid_code": InvalidCode,
    "code_expired": CodeExpired,
    "pin_invalid": PinInvalid,
    "method_locked": MethodLocked,
    "account_locked": AccountLocked,
    "method_not_enabled": MethodNotEnabled,
    "second_factor_required": SecondFactorRequired,
    "rate_limited": RateLimited,
    "delivery_failed": DeliveryFailed,
    "service_unavailable": StepUpUnavailable,
})


def error_class(code: str) -> type[StepUpError]:
    """The exception class for a problem ``code`` (:class:`StepUpError` if unknown)."""
    return _BY_CODE.get(code, StepUpError)
