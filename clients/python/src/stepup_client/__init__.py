"""A typed client (sync and async) for StepUp's integration API.

>>> from stepup_client import StepUp, InvalidCode, MethodLocked
>>> stepup = StepUp("https://mfa.example.com", "sk_app_…")
>>> stepup.verify(user_id, "totp", code)          # raises InvalidCode, MethodLocked, …
"""

from stepup_client._calls import __version__
from stepup_client.client import AsyncStepUp, StepUp
from stepup_client.errors import (
    AccountLocked,
    CodeExpired,
    Conflict,
    DeliveryFailed,
    Forbidden,
    InvalidCode,
    InvalidCredentials,
    MethodLocked,
    MethodNotEnabled,
    NotAuthenticated,
    NotFound,
    PinInvalid,
    RateLimited,
    SecondFactorRequired,
    StepUpError,
    StepUpUnavailable,
    ValidationError,
    error_class,
)
from stepup_client.models import (
    Challenge,
    Enrollment,
    Method,
    Operation,
    OperationMethod,
    User,
    Verification,
)

__all__ = [
    "AccountLocked",
    "AsyncStepUp",
    "Challenge",
    "CodeExpired",
    "Conflict",
    "DeliveryFailed",
    "Enrollment",
    "Forbidden",
    "InvalidCode",
    "InvalidCredentials",
    "Method",
    "MethodLocked",
    "MethodNotEnabled",
    "NotAuthenticated",
    "NotFound",
    "Operation",
    "OperationMethod",
    "PinInvalid",
    "RateLimited",
    "SecondFactorRequired",
    "StepUp",
    "StepUpError",
    "StepUpUnavailable",
    "User",
    "ValidationError",
    "Verification",
    "__version__",
    "error_class",
]
