"""Domain errors. Each carries a stable machine ``code`` (API.md → conventions).

The web layer maps codes to HTTP statuses in one place (``web/problems.py``); nothing
here knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    title = "Error"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None,
                 field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.retry_after = retry_after
        self.field = field
        # Extension members of the problem document (RFC 9457 §3.2).
        self.extra = extra or {}


class ValidationFailed(DomainError):
    code = "validation_error"
    title = "The request is not valid"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    title = "The e-mail or password is not correct"


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    title = "You need to log in"


class Forbidden(DomainError):
    code = "forbidden"
    title = "This is not allowed"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "This conflicts with the current state"


class InvalidCode(DomainError):
    code = "invalid_code"
    title = "The security code is not valid"


class CodeExpired(DomainError):
    code = "code_expired"
    title = "The security code has expired"


class PinInvalid(DomainError):
    code = "pin_invalid"
    title = "The PIN is not correct"


class MethodLocked(DomainError):
    code = "method_locked"
    title = "Too many wrong codes: this method is locked for a while"


class AccountLocked(DomainError):
    code = "account_locked"
    title = "The account is locked"


class MethodNotEnabled(DomainError):
    code = "method_not_enabled"
    title = "This method is not enabled"


class SecondFactorRequired(DomainError):
    code = "second_factor_required"
    title = "A second factor is required"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many attempts: try again later"


class DeliveryFailed(DomainError):
    code = "delivery_failed"
    title = "The message could not be sent"
