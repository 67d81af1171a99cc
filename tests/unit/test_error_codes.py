"""Every error a client may need to act on has its own code, an HTTP status and a
``retryable`` that tells a program whether sending the same request again can help."""

from __future__ import annotations

from stepup.domain import errors
from stepup.web.problems import RETRYABLE_CODES, STATUS_BY_CODE, problem_body

# API.md, "Integration API": the specific codes that replace the catch-alls.
SPECIFIC = {"pin_required": 409, "operation_already_confirmed": 409,
            "operation_expired": 409, "method_already_enabled": 409, "email_taken": 409,
            "api_quota_exceeded": 429, "resend_too_soon": 429, "send_cap_reached": 429,
            "code_already_used": 409, "invalid_destination": 422, "delivery_failed": 502,
            "idempotency_key_reused": 422, "idempotency_key_in_use": 409}


def _all(cls: type[errors.DomainError]) -> list[type[errors.DomainError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all(child))]


def test_every_domain_error_has_a_status_and_says_if_it_is_retryable() -> None:
    codes = {}
    for cls in _all(errors.DomainError)[1:]:
        assert cls.code in STATUS_BY_CODE, cls
        assert cls.retryable == (cls.code in RETRYABLE_CODES), cls
        assert codes.setdefault(cls.code, cls) is cls, f"{cls.code} is used twice"
    for code, status in SPECIFIC.items():
        assert code in codes and STATUS_BY_CODE[code] == status, code


def test_transient_answers_are_retryable_and_the_rest_are_not() -> None:
    assert problem_body("service_unavailable", "t", "d")["retryable"] is True
    assert problem_body("rate_limited", "t", "d")["retryable"] is True
    assert problem_body("invalid_code", "t", "d")["retryable"] is False
    assert problem_body("invalid_destination", "t", "d")["retryable"] is False
    assert problem_body("internal_error", "t", "d", status=500)["retryable"] is False
