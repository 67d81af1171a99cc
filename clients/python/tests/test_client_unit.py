"""The client without a server (httpx.MockTransport): problem → exception mapping,
answers that are not problems, what is sent, and that the key never leaks."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import stepup_client
from stepup_client import (
    AsyncStepUp,
    EndUser,
    InvalidCode,
    MethodLocked,
    RateLimited,
    StepUp,
    StepUpError,
    StepUpUnavailable,
    error_class,
)

KEY = "sk_app_secret-key-value"
CODES = {"validation_error": 422, "invalid_credentials": 401, "not_authenticated": 401,
         "forbidden": 403, "not_found": 404, "conflict": 409, "invalid_code": 400,
         "code_expired": 400, "pin_invalid": 400, "method_locked": 423,
         "account_locked": 423, "method_not_enabled": 409, "second_factor_required": 401,
         "rate_limited": 429, "delivery_failed": 502, "webhook_not_configured": 409}


def problem(code: str, status: int, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"type": f"https://stepup.dev/problems/{code}",
                                        "title": code, "status": status,
                                        "detail": f"{code} detail", "code": code, **extra},
                          headers={"Content-Type": "application/problem+json"})


def client(answer: Callable[[httpx.Request], httpx.Response]) -> StepUp:
    # No automatic retries here: test_retries.py covers them.
    return StepUp("https://mfa.example.com", KEY, retries=0,
                  transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(("code", "status"), sorted(CODES.items()))
def test_every_code_has_its_exception(code: str, status: int) -> None:
    cls = error_class(code)
    assert cls is not StepUpError and issubclass(cls, StepUpError)
    assert cls.__name__ == "".join(p.title() for p in code.split("_"))
    assert getattr(stepup_client, cls.__name__) is cls
    with client(lambda _: problem(code, status, field="code")) as c, \
            pytest.raises(cls) as raised:
        c.verify("u1", "totp", "123456")
    e = raised.value
    assert (e.status, e.code, e.title, e.detail, e.field) == (
        status, code, code, f"{code} detail", "code")


def test_retry_after_from_body_or_header() -> None:
    with client(lambda _: problem("method_locked", 423, retry_after=60)) as c, \
            pytest.raises(MethodLocked) as locked:
        c.verify("u1", "totp", "000000")
    assert locked.value.retry_after == 60
    limited = httpx.Response(429, json={"code": "rate_limited", "title": "t", "status": 429,
                                        "detail": "d", "type": "x"},
                             headers={"Retry-After": "7"})
    with client(lambda _: limited) as c, pytest.raises(RateLimited) as raised:
        c.methods("u1")
    assert raised.value.retry_after == 7


def test_unknown_codes_and_non_problems() -> None:
    with client(lambda _: problem("payload_too_large", 413)) as c, \
            pytest.raises(StepUpError) as raised:
        c.methods("u1")
    assert type(raised.value) is StepUpError and raised.value.code == "payload_too_large"
    with client(lambda _: httpx.Response(500, text="<h1>oops</h1>")) as c, \
            pytest.raises(StepUpError) as raised:
        c.methods("u1")
    assert type(raised.value) is StepUpError and raised.value.status == 500
    with client(lambda _: httpx.Response(502, text="Bad Gateway")) as c, \
            pytest.raises(StepUpUnavailable) as down:
        c.methods("u1")
    assert down.value.status == 502
    with client(lambda _: problem("service_unavailable", 503, retry_after=5)) as c, \
            pytest.raises(StepUpUnavailable):
        c.methods("u1")
    with client(lambda _: httpx.Response(200, json={"unexpected": True})) as c, \
            pytest.raises(StepUpError) as odd:
        c.verify("u1", "totp", "123456")
    assert odd.value.code == "invalid_response"


def test_what_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"valid": True, "method": "totp",
                                         "verified_at": "2026-01-02T03:04:05Z"})

    caplog.set_level(logging.DEBUG)
    with StepUp("https://mfa.example.com/", KEY, transport=httpx.MockTransport(answer)) as c:
        v = c.verify("a/../b", "totp", "123456", purpose="op1")
        assert KEY not in repr(c) and KEY not in str(vars(c))
    assert v.valid and v.verified_at.year == 2026 and v.verified_at.tzinfo is not None
    request = seen[0]
    assert request.method == "POST"
    assert request.url.raw_path == b"/api/v1/users/a%2F..%2Fb/verify"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {"method": "totp", "code": "123456",
                                           "purpose": "op1"}
    assert KEY not in caplog.text


def test_bad_arguments_fail_before_sending() -> None:
    with pytest.raises(ValueError, match="api_key") as bad:
        StepUp("https://mfa.example.com", "sk_app_ with space")
    assert "with space" not in str(bad.value)
    with pytest.raises(ValueError, match="base_url"):
        StepUp("mfa.example.com", KEY)
    with client(lambda _: httpx.Response(200)) as c:
        with pytest.raises(ValueError, match="withdrawal=True"):
            c.switch("u1", "totp", "123456")
        with pytest.raises(ValueError, match="user_id"):
            c.methods("")
    assert StepUp("https://h/api/v1/", KEY).base_url == "https://h/api/v1"


def test_sync_and_async_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {n: inspect.signature(f) for n, f in vars(cls).items()
                if not n.startswith("_") and callable(f) and n not in ("close", "aclose")}

    sync, async_ = public(StepUp), public(AsyncStepUp)
    assert sync.keys() == async_.keys()
    for name, sig in sync.items():
        assert list(sig.parameters.values()) == list(async_[name].parameters.values()), name
        if name.startswith("iter_"):  # `async for`
            assert inspect.isasyncgenfunction(getattr(AsyncStepUp, name)), name
            assert inspect.isgeneratorfunction(getattr(StepUp, name)), name
        else:
            assert inspect.iscoroutinefunction(getattr(AsyncStepUp, name)), name


@pytest.mark.asyncio
async def test_async_maps_problems_too() -> None:
    async def answer(_: httpx.Request) -> httpx.Response:
        return problem("invalid_code", 400)

    async with AsyncStepUp("https://mfa.example.com", KEY,
                           transport=httpx.MockTransport(answer)) as c:
        with pytest.raises(InvalidCode):
            await c.verify("u1", "totp", "123456")


def test_lifecycle_requests_and_the_end_user() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"users": [], "next_cursor": None})

    who = EndUser(ip=" 2001:DB8::0001 ", user_agent="Mozilla/5.0 (Ünïcode)\r\nX: y")
    assert who.ip == "2001:db8::1" and who.user_agent == "Mozilla/5.0 (?n?code)??X: y"
    with client(answer) as c:
        assert c.find_user(email="jane@example.com", end_user=who) is None
        assert list(c.iter_users(limit=10)) == []
        with pytest.raises(ValueError, match="email= or external_id="):
            c.find_user()
        with pytest.raises(ValueError, match="limit"):
            c.list_users(limit=0)
        with pytest.raises(TypeError, match="EndUser"):
            c.methods("u1", end_user="203.0.113.7")  # type: ignore[arg-type]
    lookup, listing = seen
    assert lookup.url.params["email"] == "jane@example.com" and "cursor" not in lookup.url.params
    assert lookup.headers["StepUp-End-User-IP"] == "2001:db8::1"
    assert lookup.headers["StepUp-End-User-Agent"] == "Mozilla/5.0 (?n?code)??X: y"
    assert listing.url.params["limit"] == "10" and "StepUp-End-User-IP" not in listing.headers


def test_update_user_sends_only_what_changes() -> None:
    bodies: list[object] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append((request.method, json.loads(request.content)))
        return httpx.Response(200, json={"id": "u1", "email": "a@example.com",
                                         "language": "en", "verification_grade": 0,
                                         "external_id": None, "methods": [],
                                         "locks": {"methods": {"totp": "2030-01-01T00:00:00Z"}}})

    with client(answer) as c:
        user = c.update_user("u1", external_id=None)
        c.update_user("u1", language="ru")
    assert bodies == [("PATCH", {"external_id": None}), ("PATCH", {"language": "ru"})]
    assert user.locks is not None and user.locks.methods["totp"].year == 2030
