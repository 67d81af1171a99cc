"""Domain errors. Each carries a stable machine ``code`` (API.md → conventions).

The web layer maps codes to HTTP statuses in one place (``web/problems.py``); nothing
here knows about HTTP.
"""

from __future__ import annotations

from typing import Any

from stepup.domain.texts import error_text


class DomainError(Exception):
    code = "error"
    title = "Error"
    #: Whether the same request may succeed if simply sent again later (a transient
    #: state: a quota, a cooldown, a provider outage); False means change something first.
    retryable = False

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None,
                 field: str | None = None, extra: dict[str, Any] | None = None,
                 situation: str | None = None, values: dict[str, Any] | None = None
                 ) -> None:
        self.retry_after = retry_after
        self.field = field
        # Extension members of the problem document (RFC 9457 §3.2).
        self.extra = extra or {}
        # Which text of the catalogue (domain/texts.py) tells it, and the values of its
        # placeholders (never part of the problem document).
        self.situation = situation
        self.values = values or {}
        # A sentence the raise site wrote itself (English; the catalogue tells the rest).
        self.own_detail = detail
        self.detail = detail or error_text(self)
        super().__init__(self.detail)


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


class MethodRequired(Conflict):
    """The operator's policy (the adapter's ``may_disable``) keeps this method on."""

    code = "method_required"
    title = "This method cannot be disabled"


class SecondFactorRequired(DomainError):
    code = "second_factor_required"
    title = "A second factor is required"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many attempts: try again later"
    retryable = True


class DeliveryFailed(DomainError):
    code = "delivery_failed"
    title = "The message could not be sent"
    retryable = True


# --- specific codes where a catch-all covered situations a client handles differently ---


class PinRequired(Conflict):
    code = "pin_required"
    title = "Enter the PIN first"


class OperationAlreadyConfirmed(Conflict):
    code = "operation_already_confirmed"
    title = "The operation is already confirmed"


class OperationExpired(Conflict):
    code = "operation_expired"
    title = "The operation has expired"


class MethodAlreadyEnabled(Conflict):
    code = "method_already_enabled"
    title = "The method is already enabled"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "This e-mail address is already used"


class UserConflict(Conflict):
    """The e-mail and the external id given name two different users (or the external id
    names a user with another e-mail): never answered with either of them."""

    code = "user_conflict"
    title = "These details belong to different users"


class CodeAlreadyUsed(Conflict):
    """The code is right but was already accepted: not a guess, never counted as one."""

    code = "code_already_used"
    title = "This code was already used"


class MethodNotAllowed(Conflict):
    """The method is enabled but not switched on for this purpose (login, an operation)."""

    code = "method_not_allowed_for_purpose"
    title = "This method does not protect this"


class NoCodeSent(Conflict):
    code = "method_sends_no_codes"
    title = "This method does not send codes"


class StateChanged(Conflict):
    """Someone else changed the same thing meanwhile: read it again, then decide."""

    code = "state_changed"
    title = "This changed meanwhile"
    retryable = True


class RecoveryAlreadyOpen(Conflict):
    code = "recovery_already_open"
    title = "A recovery request is already open"


class WebhookNotConfigured(Conflict):
    code = "webhook_not_configured"
    title = "No webhook URL is set for this app"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"
    retryable = True


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with another request"


class ApiQuotaExceeded(RateLimited):
    code = "api_quota_exceeded"
    title = "This API key made too many calls"

    def __init__(self, detail: str | None = None, *, limit: int, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.limit = limit  # the key's calls per minute


class ResendTooSoon(RateLimited):
    code = "resend_too_soon"
    title = "A code was sent moments ago"


class SendCapReached(RateLimited):
    code = "send_cap_reached"
    title = "Too many codes were sent"


class RecoveryCooldown(RateLimited):
    """A recovery request was cancelled or rejected lately: a new one waits (each filing
    tells every contact, so it must not be repeatable at will)."""

    code = "recovery_cooldown"
    title = "A recovery request was closed lately: try again later"


class SignupLimitReached(RateLimited):
    """Too many accounts were created from the client's network this hour."""

    code = "signup_limit_reached"
    title = "Too many sign-ups from this network"


class InvalidDestination(DomainError):
    """The provider says this number or address cannot receive messages: permanent."""

    code = "invalid_destination"
    title = "Messages cannot be delivered to this destination"


class InvalidResetToken(DomainError):
    """A password reset link that is unknown, expired or already used."""

    code = "invalid_reset_token"
    title = "The password reset link is not valid"


class NoMethodForOperation(Conflict):
    """Nothing may confirm this operation: no method is switched on for it, and the
    account e-mail that would receive its code is not verified (policy ``always``)."""

    code = "no_method_for_operation"
    title = "Nothing can confirm this operation yet"


class EmailAlreadyVerified(Conflict):
    code = "email_already_verified"
    title = "The e-mail address is already verified"
