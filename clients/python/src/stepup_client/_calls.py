"""Everything the sync and async clients share, written once and free of I/O: building
each request (:class:`Call`), and turning an answer into a model or an exception."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from stepup_client.errors import StepUpError, StepUpUnavailable, error_class
from stepup_client.models import (
    Challenge,
    Enrollment,
    MalformedAnswer,
    Method,
    Operation,
    User,
    Verification,
)

__version__ = "0.1.0"
API_PREFIX = "/api/v1"
USER_AGENT = f"stepup-client-python/{__version__}"
_GATEWAY = {502, 503, 504}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: what to send, and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response, Any], T]
    body: Mapping[str, Any] | None = None


# --- set-up -----------------------------------------------------------------------------

def api_base(base_url: str) -> str:
    """``https://mfa.example.com`` (or ``…/api/v1``) → ``https://mfa.example.com/api/v1``."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials; pass the API key instead")
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def headers(api_key: str) -> dict[str, str]:
    key = api_key.strip() if isinstance(api_key, str) else ""
    # Never put the key itself in a message: it would end up in a log.
    if not key or any(c.isspace() or not c.isprintable() for c in key):
        raise ValueError("api_key must be a non-empty StepUp API key (sk_app_…)")
    return {"Authorization": f"Bearer {key}", "Accept": "application/json",
            "User-Agent": USER_AGENT}


def _seg(value: str, what: str) -> str:
    """A path segment, so an id can never reach another endpoint."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return quote(value, safe="")


def _user(user_id: str) -> str:
    return f"users/{_seg(user_id, 'user_id')}"


def _method(user_id: str, method: str) -> str:
    return f"{_user(user_id)}/methods/{_seg(method, 'method')}"


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- the calls --------------------------------------------------------------------------

def create_user(email: str, external_id: str | None, language: str | None, pin: str | None,
                password: str | None) -> Call[User]:
    return Call("POST", "users", lambda r, d: User.from_json(d, created=r.status_code == 201),
                _without_none(email=email, external_id=external_id, language=language,
                              pin=pin, password=password))


def methods(user_id: str) -> Call[list[Method]]:
    def parse(_: httpx.Response, data: Any) -> list[Method]:
        items = data.get("methods") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise MalformedAnswer("methods")
        return [Method.from_json(m) for m in items]

    return Call("GET", f"{_user(user_id)}/methods", parse)


def enroll(user_id: str, method: str, phone: str | None, email: str | None,
           pin: str | None) -> Call[Enrollment]:
    return Call("POST", f"{_method(user_id, method)}/enrollment",
                lambda _, d: Enrollment.from_json(d, method=method),
                _without_none(phone=phone, email=email, pin=pin))


def confirm_enrollment(user_id: str, method: str, code: str) -> Call[Method]:
    return Call("POST", f"{_method(user_id, method)}/enrollment/confirm",
                lambda _, d: Method.from_json(d), {"code": code})


def method_challenge(user_id: str, method: str) -> Call[Challenge]:
    return Call("POST", f"{_method(user_id, method)}/challenge",
                lambda _, d: Challenge.from_json(d, method=method))


def challenge(user_id: str, method: str, purpose: str) -> Call[Challenge]:
    return Call("POST", f"{_user(user_id)}/challenge",
                lambda _, d: Challenge.from_json(d, method=method),
                {"method": method, "purpose": purpose})


def verify(user_id: str, method: str, code: str, purpose: str) -> Call[Verification]:
    return Call("POST", f"{_user(user_id)}/verify", lambda _, d: Verification.from_json(d),
                {"method": method, "code": code, "purpose": purpose})


def switch(user_id: str, method: str, code: str, protects: Mapping[str, bool]) -> Call[Method]:
    if not protects:
        raise ValueError("switch() needs at least one operation, e.g. withdrawal=True")
    if not all(isinstance(v, bool) for v in protects.values()):
        raise TypeError("switch() takes True or False for each operation")
    return Call("PATCH", _method(user_id, method), lambda _, d: Method.from_json(d),
                {"protects": dict(protects), "code": code})


def disable(user_id: str, method: str, code: str) -> Call[Method]:
    return Call("POST", f"{_method(user_id, method)}/disable",
                lambda _, d: Method.from_json(d), {"code": code})


def create_operation(user_id: str, type: str, details: Mapping[str, str]) -> Call[Operation]:
    return Call("POST", f"{_user(user_id)}/operations", lambda _, d: Operation.from_json(d),
                {"type": type, "details": dict(details)})


def submit_pin(user_id: str, operation_id: str, pin: str) -> Call[Operation]:
    return Call("POST", f"{_user(user_id)}/operations/{_seg(operation_id, 'operation_id')}/pin",
                lambda _, d: Operation.from_json(d), {"pin": pin})


def operation(user_id: str, operation_id: str) -> Call[Operation]:
    return Call("GET", f"{_user(user_id)}/operations/{_seg(operation_id, 'operation_id')}",
                lambda _, d: Operation.from_json(d))


# --- answers ----------------------------------------------------------------------------

def request_kwargs(call: Call[Any]) -> dict[str, Any]:
    return {"method": call.method, "url": call.path,
            **({"json": dict(call.body)} if call.body is not None else {})}


def transport_error(exc: httpx.HTTPError) -> StepUpError:
    """What a failure to get an answer becomes."""
    if isinstance(exc, httpx.TransportError):
        return StepUpUnavailable(0, "unavailable", "StepUp is unavailable",
                                 f"Could not reach StepUp ({type(exc).__name__}: {exc}).")
    return StepUpError(0, "invalid_response", "Unreadable answer",
                       f"StepUp's answer could not be read ({type(exc).__name__}).")


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the exception that the answer stands for."""
    status = response.status_code
    data = _json(response)
    if not 200 <= status < 300:
        raise problem_error(response, data)
    try:
        return call.parse(response, data)
    except MalformedAnswer as exc:
        raise StepUpError(status, "invalid_response", "Unexpected answer",
                          f"StepUp's answer to {call.method} {call.path} is not as expected "
                          f"({exc}).") from None


def problem_error(response: httpx.Response, data: Any) -> StepUpError:
    status = response.status_code
    retry_after = _retry_after(response, data)
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        code: str = data["code"]
        title = data.get("title") if isinstance(data.get("title"), str) else code
        detail = data.get("detail") if isinstance(data.get("detail"), str) else title
        field = data.get("field") if isinstance(data.get("field"), str) else _one_field(data)
        return error_class(code)(status, code, str(title), str(detail), retry_after, field,
                                 problem=data)
    # Not a problem document: a proxy's error page, or something else entirely.
    reason = response.reason_phrase or "Error"
    cls = StepUpUnavailable if status in _GATEWAY else StepUpError
    return cls(status, f"http_{status}", reason,
               f"StepUp answered {status} {reason} without a problem document.", retry_after)


def _one_field(data: dict[str, Any]) -> str | None:
    """The field of a request-validation problem that names exactly one."""
    errors = data.get("errors")
    if isinstance(errors, list) and len(errors) == 1 and isinstance(errors[0], dict):
        field = errors[0].get("field")
        return field if isinstance(field, str) else None
    return None


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _retry_after(response: httpx.Response, data: Any) -> int | None:
    if isinstance(data, dict):
        value = data.get("retry_after")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    header = response.headers.get("Retry-After", "")
    return int(header) if header.strip().isdigit() else None
