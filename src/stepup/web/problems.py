"""Every error becomes an RFC 9457 problem document, in this one place.

Domain errors carry a stable ``code``; this module maps each code to its HTTP status.
Their ``detail`` is the text of the catalogue (``domain/texts.py``) through the operator
adapter, the same text the pages show: English, or the language the request's
``Accept-Language`` asks for among those StepUp speaks (``Content-Language`` says which).
Request validation errors, unknown routes and unexpected exceptions get problems too,
never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from stepup.domain.errors import DomainError
from stepup.services.runtime import Runtime
from stepup.web import i18n

log = logging.getLogger("stepup.web")

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 422,
    "bad_request": 400,
    "invalid_credentials": 401,
    "not_authenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "invalid_code": 400,
    "code_expired": 400,
    "pin_invalid": 400,
    "method_locked": 423,
    "account_locked": 423,
    "method_not_enabled": 409,
    "method_required": 409,
    "second_factor_required": 401,
    "rate_limited": 429,
    "delivery_failed": 502,
    "payload_too_large": 413,
    "method_not_allowed": 405,
    "unsupported_media_type": 415,
    "service_unavailable": 503,
    "internal_error": 500,
    "pin_required": 409,
    "operation_already_confirmed": 409,
    "operation_expired": 409,
    "method_already_enabled": 409,
    "email_taken": 409,
    "user_conflict": 409,
    "code_already_used": 409,
    "method_not_allowed_for_purpose": 409,
    "method_sends_no_codes": 409,
    "state_changed": 409,
    "recovery_already_open": 409,
    "idempotency_key_in_use": 409,
    "webhook_not_configured": 409,
    "idempotency_key_reused": 422,
    "api_quota_exceeded": 429,
    "resend_too_soon": 429,
    "send_cap_reached": 429,
    "recovery_cooldown": 429,
    "signup_limit_reached": 429,
    "invalid_destination": 422,
    "invalid_reset_token": 400,
    "no_method_for_operation": 409,
    "email_already_verified": 409,
}

# Answers that may succeed if the same request is simply sent again (after Retry-After,
# when given). Everything else needs a change first: another code, a PIN, a new operation.
def _domain_errors(cls: type[DomainError]) -> list[type[DomainError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _domain_errors(child))]


# Read off the domain errors' own ``retryable``, so the two can never disagree; plus the
# web layer's own transient answer.
RETRYABLE_CODES = frozenset({e.code for e in _domain_errors(DomainError) if e.retryable}
                            | {"service_unavailable"})

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 415: "unsupported_media_type",
               401: "not_authenticated", 403: "forbidden", 503: "service_unavailable"}


class Problem(BaseModel):
    """RFC 9457 problem document, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    retryable: bool
    field: str | None = None
    retry_after: int | None = None
    errors: list[dict[str, Any]] | None = None


def problem_body(code: str, title: str, detail: str, *, status: int | None = None,
                 retryable: bool | None = None, **extra: Any) -> dict[str, Any]:
    status = status or STATUS_BY_CODE.get(code, 400)
    body: dict[str, Any] = {"type": f"https://stepup.dev/problems/{code.replace('_', '-')}",
                            "title": title, "status": status, "detail": detail, "code": code,
                            "retryable": code in RETRYABLE_CODES if retryable is None
                            else retryable}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(code: str, title: str, detail: str, *, retry_after: int | None = None,
                     status: int | None = None, headers: Mapping[str, str] | None = None,
                     retryable: bool | None = None, **extra: Any) -> JSONResponse:
    body = problem_body(code, title, detail, status=status, retry_after=retry_after,
                        retryable=retryable, **extra)
    out = dict(headers or {})
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON,
                        headers=out or None)


def from_domain(err: DomainError, detail: str | None = None, *,
                language: str | None = None) -> JSONResponse:
    """The problem document of ``err``; ``detail`` as told in ``language`` (else the
    English text the error carries)."""
    extra: dict[str, Any] = dict(err.extra)
    if err.field:
        extra["field"] = err.field
    headers = {"Content-Language": language} if language else None
    return problem_response(err.code, err.title, detail or err.detail,
                            retry_after=err.retry_after, retryable=err.retryable,
                            headers=headers, **extra)


def told(rt: Runtime | None, err: DomainError, language: str = i18n.DEFAULT
         ) -> JSONResponse:
    """``err``'s problem document, its detail told in ``language`` by the operator
    adapter (which may override the catalogue's text)."""
    if rt is None:
        return from_domain(err)
    return from_domain(err, rt.adapter.describe_error(err, language), language=language)


def domain_problem(request: Request, err: DomainError) -> JSONResponse:
    """``err`` answered to ``request``, in the language the request accepts."""
    language = i18n.pick_language(accept_language=request.headers.get("accept-language"))
    return told(getattr(request.app.state, "runtime", None), err, language)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, err: DomainError) -> JSONResponse:
        return domain_problem(request, err)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{"field": _location(e.get("loc", ())), "message": str(e.get("msg", ""))}
                  for e in err.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response("validation_error", "The request is not valid",
                                detail or "The request is not valid.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        # The framework's own errors (unknown route, a body that is not UTF-8, ...): the
        # document's ``status`` must be the status actually answered.
        code = _HTTP_CODES.get(err.status_code, "error")
        resp = problem_response(code, str(err.detail), str(err.detail),
                                status=err.status_code, headers=err.headers)
        return resp

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(ConnectionError)
    async def _unavailable(_: Request, err: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(err).__name__)
        return problem_response("service_unavailable", "Service unavailable",
                                "The service cannot reach its database. Please try again "
                                "shortly.", retry_after=5)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, err: DBAPIError) -> JSONResponse:
        # Any database error that cost its connection (the server went away under a
        # statement) is the database being unavailable, whatever class the driver gave it.
        if err.connection_invalidated:
            return await _unavailable(request, err)
        return await _unexpected(request, err)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        # Reached only for an error raised above UnexpectedErrors (in a middleware):
        # Starlette answers with this and then re-raises, so the server closes that one
        # connection.
        return unexpected(err)

    # Imported here: the middleware module builds its answers with this one.
    from stepup.web.middleware import UnexpectedErrors

    # Added first, so innermost: a route's unexpected error is answered here and ends
    # here, and the answer still passes every other middleware (headers, metrics, the
    # idempotency key's release).
    app.add_middleware(UnexpectedErrors)


# PostgreSQL ended the transaction to break a cycle of lock waits (40P01), or could not
# serialise it (40001): it was rolled back whole, and the same call made again goes
# through. The lock orders are meant to leave no cycle (services/apikeys.py, ``held``);
# this answers one that was missed as what it is, a retry, not an internal error.
_UNDONE_SQLSTATES = frozenset({"40P01", "40001"})


def unexpected(err: Exception) -> JSONResponse:
    """The answer to an exception no handler took: logged with its stack, never shown."""
    sqlstate = getattr(err.orig, "sqlstate", None) if isinstance(err, DBAPIError) else None
    if sqlstate in _UNDONE_SQLSTATES:
        log.warning("transaction undone by the database (%s): answered 503, to retry",
                    sqlstate)
        return problem_response("service_unavailable", "Service unavailable",
                                "The call met another over the same data and was undone. "
                                "Please try again.", retry_after=1)
    if isinstance(err, OperationalError | InterfaceError | TimeoutError | ConnectionError) or (
            isinstance(err, DBAPIError) and err.connection_invalidated):
        log.error("database unavailable: %s", type(err).__name__)
        return problem_response("service_unavailable", "Service unavailable",
                                "The service cannot reach its database. Please try again "
                                "shortly.", retry_after=5)
    log.exception("unexpected error", exc_info=err)
    return problem_response("internal_error", "Internal error",
                            "Something went wrong on our side. Please try again.")
