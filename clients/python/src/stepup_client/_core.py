"""Everything the sync and async clients share, free of I/O: the :class:`Call` each
method builds, the request it becomes (headers, ``Idempotency-Key``), turning an answer
into a model or an exception, and when to retry."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from stepup_client._json import MalformedAnswer
from stepup_client._version import __version__
from stepup_client.errors import StepUpError, StepUpUnavailable, error_class
from stepup_client.models import EndUser

API_PREFIX = "/api/v1"
USER_AGENT = f"stepup-client-python/{__version__}"
CHANGING = frozenset({"POST", "PATCH", "DELETE"})
IDEMPOTENCY_KEY_MAX = 255
_GATEWAY = {502, 503, 504}

T = TypeVar("T")

Query = Mapping[str, str | int | None]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: what to send, and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response, Any], T]
    body: Mapping[str, Any] | None = None
    params: Query | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """When and how long to wait before sending a call again.

    A call is sent again only when its error is ``retryable`` (StepUp said so, or no
    answer came at all), at most ``retries`` times (0: never), after an exponential
    back-off with jitter (``backoff`` · 2ⁿ seconds, half of it random, capped at
    ``max_backoff``) or the ``Retry-After`` StepUp asked for, whichever is longer. A
    ``Retry-After`` longer than ``max_wait`` is not waited for: the error is raised at once
    with its ``retry_after``, for your portal to tell its user.
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) \
                or self.retries < 0:
            raise ValueError("retries must be a whole number, 0 or more")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_wait < 0:
            raise ValueError("backoff, max_backoff and max_wait must not be negative")

    def wait(self, retry: int, error: StepUpError) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based), or None: raise."""
        if retry >= self.retries or not error.retryable:
            return None
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** retry)
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (not a secret)
        if error.retry_after is not None:
            if error.retry_after > self.max_wait:
                return None
            delay = max(delay, float(error.retry_after))
        return delay


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


def client_kwargs(base_url: str, api_key: str, timeout: float) -> dict[str, Any]:
    """What both clients give their ``httpx`` client. The API key goes into its default
    headers and nowhere else: no attribute, no ``repr``, no log line."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    # follow_redirects stays off: a redirect must not carry the key elsewhere.
    return {"base_url": api_base(base_url), "headers": headers(api_key),
            "timeout": httpx.Timeout(timeout), "follow_redirects": False}


def seg(value: str, what: str) -> str:
    """A path segment, so an id can never reach another endpoint."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return quote(value, safe="")


def user_path(user_id: str) -> str:
    return f"users/{seg(user_id, 'user_id')}"


def method_path(user_id: str, method: str) -> str:
    return f"{user_path(user_id)}/methods/{seg(method, 'method')}"


def without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- the request ------------------------------------------------------------------------

def idempotency_key(call: Call[Any], given: str | None) -> str | None:
    """The key for one logical call: the caller's, or a fresh UUID for a changing call.
    Every automatic retry of the call sends the same one."""
    if given is not None:
        if not isinstance(given, str) or not 1 <= len(given) <= IDEMPOTENCY_KEY_MAX \
                or not all("!" <= c <= "~" for c in given):
            raise ValueError("idempotency_key must be 1-255 visible ASCII characters")
        return given
    return str(uuid.uuid4()) if call.method in CHANGING else None


def request_kwargs(call: Call[Any], end_user: EndUser | None = None,
                   key: str | None = None) -> dict[str, Any]:
    if end_user is not None and not isinstance(end_user, EndUser):
        raise TypeError("end_user must be an EndUser(ip=…, user_agent=…)")
    extra = end_user.headers() if end_user is not None else {}
    if key is not None:
        extra["Idempotency-Key"] = key
    out: dict[str, Any] = {"method": call.method, "url": call.path}
    if call.body is not None:
        out["json"] = dict(call.body)
    if call.params:
        out["params"] = {k: v for k, v in call.params.items() if v is not None}
    if extra:
        out["headers"] = extra
    return out


# --- answers ----------------------------------------------------------------------------

def transport_error(exc: httpx.HTTPError) -> StepUpError:
    """What a failure to get an answer becomes."""
    if isinstance(exc, httpx.TransportError):
        return StepUpUnavailable(0, "service_unavailable", "StepUp is unavailable",
                                 f"Could not reach StepUp ({type(exc).__name__}: {exc}).",
                                 problem={"code": "service_unavailable", "retryable": True})
    return StepUpError(0, "invalid_response", "Unreadable answer",
                       f"StepUp's answer could not be read ({type(exc).__name__}).",
                       problem={"code": "invalid_response", "retryable": False})


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
    detail = f"StepUp answered {status} {reason} without a problem document."
    if status in _GATEWAY:  # a proxy could not reach StepUp
        return StepUpUnavailable(status, "service_unavailable", reason, detail, retry_after)
    return StepUpError(status, f"http_{status}", reason, detail, retry_after)


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
