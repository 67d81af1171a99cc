"""What the OpenAPI description says beyond the routes' own signatures: the headers of
the integration API (the end user's context, ``Idempotency-Key``) and the RateLimit
headers of every answer to an API key. These are read by middleware and dependencies,
not by the route functions, so FastAPI cannot see them by itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from stepup.web.deps import END_USER_AGENT, END_USER_IP
from stepup.web.idempotency import METHODS, PREFIXES

INTEGRATION = "/api/v1/users"

END_USER_HEADERS = [
    {"name": END_USER_IP, "in": "header", "required": False,
     "description": "Your end user's IP address (IPv4 or IPv6), for the per-IP send cap, "
                    "the new-device check, notices and the audit. Never your server's.",
     "schema": {"type": "string", "maxLength": 64}, "example": "203.0.113.7"},
    {"name": END_USER_AGENT, "in": "header", "required": False,
     "description": "Your end user's browser (User-Agent), for the new-device check, "
                    "notices and the audit.",
     "schema": {"type": "string", "maxLength": 512}},
]
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the call safe to retry: the same key and request within 24 h "
                   "answer the stored answer (Idempotent-Replayed: true); another request "
                   "with the key is 422 idempotency_key_reused; while the first call runs, "
                   "409 idempotency_key_in_use.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "6b3e0c9a-2f4d-4c1e-9a57-0d1c2b3a4f5e",
}
RATELIMIT_HEADERS = {
    "RateLimit-Policy": {"description": "The key's quota: calls per 60-second window "
                                        "(draft-ietf-httpapi-ratelimit-headers).",
                         "schema": {"type": "string"}, "example": '"key";q=6000;w=60'},
    "RateLimit": {"description": "What is left of the quota, and seconds to its reset.",
                  "schema": {"type": "string"}, "example": '"key";r=5987;t=42'},
}


def _idempotent(path: str, method: str) -> bool:
    return method.upper() in METHODS and any(
        path == p or path.startswith(p + "/") for p in PREFIXES)


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the integration API's headers to its operations, in place."""
    for path, item in schema.get("paths", {}).items():
        if not (path == INTEGRATION or path.startswith(INTEGRATION + "/")):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            params = operation.setdefault("parameters", [])
            params.extend(END_USER_HEADERS)
            if _idempotent(path, method):
                params.append(IDEMPOTENCY_KEY)
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {}).update(RATELIMIT_HEADERS)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
