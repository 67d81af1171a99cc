"""Automatic retries, idempotency keys and the end user's headers, against a small local
stand-in for StepUp that records what it got."""

from __future__ import annotations

import time
import uuid

import pytest

from standin import DROP, Answer, StandIn, problem
from stepup_client import (
    AsyncStepUp,
    EndUser,
    InvalidCode,
    SendCapReached,
    StepUp,
    StepUpUnavailable,
)
from stepup_client._core import Retry
from stepup_client.errors import StepUpError

VERIFIED = Answer(200, {"valid": True, "method": "totp", "verified_at": "2026-01-02T03:04:05Z"})
UNAVAILABLE = problem("service_unavailable", 503, True)
JANE = EndUser(ip="203.0.113.7", user_agent="Mozilla/5.0 Firefox/128.0")


def client(base_url: str, **kwargs: float) -> StepUp:
    return StepUp(base_url, "sk_app_test", backoff=0.01, **kwargs)  # type: ignore[arg-type]


def test_a_503_is_retried_with_the_same_idempotency_key() -> None:
    standin = StandIn(UNAVAILABLE, UNAVAILABLE, VERIFIED)
    with standin.running() as url, client(url) as stepup:
        verified = stepup.verify("u1", "totp", "492039", end_user=JANE)
    assert verified.valid
    assert [s.path for s in standin.seen] == ["/api/v1/users/u1/verify"] * 3
    keys = {s.headers["Idempotency-Key"] for s in standin.seen}
    assert len(keys) == 1 and uuid.UUID(keys.pop()).version == 4
    assert {s.headers["StepUp-End-User-IP"] for s in standin.seen} == {"203.0.113.7"}
    assert {s.headers["StepUp-End-User-Agent"] for s in standin.seen} == {JANE.user_agent}
    assert all(s.json() == {"method": "totp", "code": "492039", "purpose": "login"}
               for s in standin.seen)


def test_each_logical_call_has_its_own_key_and_a_given_key_is_kept() -> None:
    standin = StandIn(VERIFIED)
    with standin.running() as url, client(url) as stepup:
        stepup.verify("u1", "totp", "111111")
        stepup.verify("u1", "totp", "111111")
        stepup.verify("u1", "totp", "111111", idempotency_key="order-8812-verify")
    first, second, mine = (s.headers["Idempotency-Key"] for s in standin.seen)
    assert first != second and mine == "order-8812-verify"
    with pytest.raises(ValueError, match="idempotency_key"):
        StepUp(url, "sk_app_test").verify("u1", "totp", "1", idempotency_key="with space")


def test_reads_carry_no_key_and_are_retried_too() -> None:
    standin = StandIn(UNAVAILABLE, Answer(200, {"methods": []}))
    with standin.running() as url, client(url) as stepup:
        assert stepup.methods("u1", end_user=JANE) == []
    assert len(standin.seen) == 2
    assert all("Idempotency-Key" not in s.headers for s in standin.seen)
    assert standin.seen[0].headers["StepUp-End-User-IP"] == "203.0.113.7"


def test_no_answer_at_all_is_retried_with_the_same_key() -> None:
    standin = StandIn(DROP, VERIFIED)
    with standin.running() as url, client(url) as stepup:
        assert stepup.verify("u1", "totp", "492039").valid
    assert len(standin.seen) == 2
    assert standin.seen[0].headers["Idempotency-Key"] == standin.seen[1].headers[
        "Idempotency-Key"]


def test_a_non_retryable_error_is_not_retried() -> None:
    standin = StandIn(problem("invalid_code", 400, False), VERIFIED)
    with standin.running() as url, client(url) as stepup, pytest.raises(InvalidCode):
        stepup.verify("u1", "totp", "000000")
    assert len(standin.seen) == 1


def test_retries_are_bounded_and_can_be_switched_off() -> None:
    standin = StandIn(UNAVAILABLE)
    with standin.running() as url:
        with client(url, retries=2) as stepup, pytest.raises(StepUpUnavailable) as down:
            stepup.verify("u1", "totp", "492039")
        assert len(standin.seen) == 3 and down.value.status == 503
        assert down.value.code == "service_unavailable" and down.value.retryable
        with client(url, retries=0) as stepup, pytest.raises(StepUpUnavailable):
            stepup.verify("u1", "totp", "492039")
        assert len(standin.seen) == 4


def test_retry_after_is_honoured_up_to_the_longest_wait() -> None:
    busy = problem("idempotency_key_in_use", 409, True, retry_after=1)
    standin = StandIn(busy, VERIFIED)
    with standin.running() as url, client(url) as stepup:
        started = time.monotonic()
        assert stepup.verify("u1", "totp", "492039").valid
        assert time.monotonic() - started >= 0.95  # waited the second StepUp asked for
    capped = StandIn(problem("send_cap_reached", 429, True, retry_after=1312), VERIFIED)
    with capped.running() as url, client(url) as stepup, \
            pytest.raises(SendCapReached) as raised:
        stepup.challenge("u1", "sms")
    assert len(capped.seen) == 1 and raised.value.retry_after == 1312


def test_back_off_grows_with_jitter_and_honours_retry_after() -> None:
    policy = Retry(retries=5, backoff=0.5, max_backoff=4.0, max_wait=30.0)
    down = StepUpUnavailable(0, "service_unavailable", "t", "d")
    waits = [policy.wait(n, down) for n in range(5)]
    assert waits[0] is not None and 0.25 <= waits[0] <= 0.5
    assert all(w is not None and 2.0 <= w <= 4.0 for w in waits[3:])  # capped
    assert policy.wait(5, down) is None
    limited = StepUpError(429, "rate_limited", "t", "d", retry_after=7,
                          problem={"retryable": True})
    assert policy.wait(0, limited) == 7.0
    final = StepUpError(400, "invalid_code", "t", "d", problem={"retryable": False})
    assert policy.wait(0, final) is None
    with pytest.raises(ValueError, match="retries"):
        Retry(retries=-1)


def test_unreachable_stepup_says_service_unavailable(nowhere: str) -> None:
    with StepUp(nowhere, "sk_app_x", timeout=2, backoff=0.01) as stepup, \
            pytest.raises(StepUpUnavailable) as down:
        stepup.verify("u", "totp", "123456")
    error = down.value
    assert (error.code, error.status, error.retryable) == ("service_unavailable", 0, True)
    assert error.problem["code"] == "service_unavailable"


async def test_the_async_client_retries_with_the_same_key() -> None:
    standin = StandIn(UNAVAILABLE, DROP, VERIFIED)
    with standin.running() as url:
        async with AsyncStepUp(url, "sk_app_test", backoff=0.01) as stepup:
            assert (await stepup.verify("u1", "totp", "1", end_user=JANE)).valid
        async with AsyncStepUp(url, "sk_app_test", retries=0) as stepup:
            standin.answers = [problem("invalid_code", 400, False)]
            with pytest.raises(InvalidCode):
                await stepup.verify("u1", "totp", "1")
    assert len(standin.seen) == 4
    assert len({s.headers["Idempotency-Key"] for s in standin.seen[:3]}) == 1
    assert standin.seen[3].headers["Idempotency-Key"] != standin.seen[0].headers[
        "Idempotency-Key"]
