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
    "ApiQuotaExceeded",
    "CodeAlreadyUsed",
    "CodeExpired",
    "Conflict",
    "DeliveryFailed",
    "EmailAlreadyVerified",
    "EmailTaken",
    "Forbidden",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidDestination",
    "InvalidResetToken",
    "MethodAlreadyEnabled",
    "MethodLocked",
    "MethodNotAllowedForPurpose",
    "MethodNotEnabled",
    "MethodRequired",
    "MethodSendsNoCodes",
    "NoMethodForOperation",
    "NotAuthenticated",
    "NotFound",
    "OperationAlreadyConfirmed",
    "OperationExpired",
    "PinInvalid",
    "PinRequired",
    "RateLimited",
    "RecoveryAlreadyOpen",
    "RecoveryCooldown",
    "ResendTooSoon",
    "SecondFactorRequired",
    "SendCapReached",
    "SignupLimitReached",
    "StateChanged",
    "StepUpError",
    "StepUpUnavailable",
    "UserConflict",
    "ValidationError",
    "WebhookNotConfigured",
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

    @property
    def retryable(self) -> bool:
        """StepUp's word on whether the same request may succeed if sent again later
        (after ``retry_after`` when given); True when StepUp could not be reached."""
        return bool(self.problem.get("retryable", self.status in (0, 502, 503, 504)))

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
    """``service_unavailable``: StepUp could not be reached (connection refused, timeout,
    TLS failure...: ``status`` 0), said it cannot serve now (503), or a proxy in front of
    it answered a gateway error. Always ``retryable``; the client has already retried it
    (with the same ``Idempotency-Key``) as often as it was told to."""


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


class PinRequired(Conflict):
    """``pin_required`` (409): the operation waits for its PIN."""


class OperationAlreadyConfirmed(Conflict):
    """``operation_already_confirmed`` (409): read the operation for its receipt."""


class OperationExpired(Conflict):
    """``operation_expired`` (409): start a new operation."""


class MethodAlreadyEnabled(Conflict):
    """``method_already_enabled`` (409): disable it first."""


class MethodRequired(Conflict):
    """``method_required`` (409): the operator's policy keeps this method on."""


class NoMethodForOperation(Conflict):
    """``no_method_for_operation`` (409): nothing can confirm this operation yet — the
    user verifies their e-mail address, or switches a method on for it."""


class EmailAlreadyVerified(Conflict):
    """``email_already_verified`` (409): the account e-mail is verified already."""


class InvalidResetToken(StepUpError):
    """``invalid_reset_token`` (400): the password reset link is unknown, expired, used or
    replaced; the user asks for a new one."""


class EmailTaken(Conflict):
    """``email_taken`` (409): another user of the app has this e-mail."""


class UserConflict(Conflict):
    """``user_conflict`` (409): the details belong to another user, or differ from the user's."""


class CodeAlreadyUsed(Conflict):
    """``code_already_used`` (409): the code was already accepted; not counted as a failure."""


class MethodNotAllowedForPurpose(Conflict):
    """``method_not_allowed_for_purpose`` (409): the method is not switched on for this
    login or operation."""


class MethodSendsNoCodes(Conflict):
    """``method_sends_no_codes`` (409): TOTP and backup codes are not sent."""


class StateChanged(Conflict):
    """``state_changed`` (409): it changed meanwhile: read it again."""


class RecoveryAlreadyOpen(Conflict):
    """``recovery_already_open`` (409): one recovery request at a time."""


class IdempotencyKeyInUse(Conflict):
    """``idempotency_key_in_use`` (409): the first call with this key is still running."""


class WebhookNotConfigured(Conflict):
    """``webhook_not_configured`` (409): no webhook URL is set for your app (``stepup app
    set NAME --webhook-url …``)."""


class IdempotencyKeyReused(StepUpError):
    """``idempotency_key_reused`` (422): the key was used with another request."""


class ApiQuotaExceeded(RateLimited):
    """``api_quota_exceeded`` (429): the API key's calls per minute."""


class ResendTooSoon(RateLimited):
    """``resend_too_soon`` (429): a code was sent moments ago."""


class SendCapReached(RateLimited):
    """``send_cap_reached`` (429): a send cap; ``retry_after`` seconds."""


class RecoveryCooldown(RateLimited):
    """``recovery_cooldown`` (429): the user's last recovery request was cancelled or
    rejected lately; a new one may be filed after ``retry_after`` seconds."""


class SignupLimitReached(RateLimited):
    """``signup_limit_reached`` (429): too many sign-ups from the caller's network this
    hour; ``retry_after`` seconds."""


class InvalidDestination(StepUpError):
    """``invalid_destination`` (422): the provider says this number or address cannot receive."""


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
    "pin_required": PinRequired,
    "operation_already_confirmed": OperationAlreadyConfirmed,
    "operation_expired": OperationExpired,
    "method_already_enabled": MethodAlreadyEnabled,
    "method_required": MethodRequired,
    "no_method_for_operation": NoMethodForOperation,
    "email_already_verified": EmailAlreadyVerified,
    "invalid_reset_token": InvalidResetToken,
    "email_taken": EmailTaken,
    "user_conflict": UserConflict,
    "code_already_used": CodeAlreadyUsed,
    "method_not_allowed_for_purpose": MethodNotAllowedForPurpose,
    "method_sends_no_codes": MethodSendsNoCodes,
    "state_changed": StateChanged,
    "recovery_already_open": RecoveryAlreadyOpen,
    "idempotency_key_in_use": IdempotencyKeyInUse,
    "idempotency_key_reused": IdempotencyKeyReused,
    "webhook_not_configured": WebhookNotConfigured,
    "api_quota_exceeded": ApiQuotaExceeded,
    "resend_too_soon": ResendTooSoon,
    "send_cap_reached": SendCapReached,
    "recovery_cooldown": RecoveryCooldown,
    "signup_limit_reached": SignupLimitReached,
    "invalid_destination": InvalidDestination,
})


def error_class(code: str) -> type[StepUpError]:
    """The exception class for a problem ``code`` (:class:`StepUpError` if unknown)."""
    return _BY_CODE.get(code, StepUpError)
