"""What the OpenAPI description says beyond the routes' own signatures: the headers of
the integration API (the end user's context, ``Idempotency-Key``), the RateLimit
headers of every answer to an API key, the security each route really asks for, every
problem it can answer, and examples of the integration calls. Middleware and
dependencies read these, not the route functions, so FastAPI cannot see them by itself.

Security and errors are derived, not declared route by route: each route's dependencies
(walked recursively) tell its security scheme (``deps.caller``, ``deps.app_key(...)``,
``deps.support_key``, or none: public), and from that, its shape (parameters, a body, a
``{user_id}``) and ``openapi_errors.ROUTE_CODES`` come its problems, one response per
status listing every code (``x-codes``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from stepup.domain.errors import DomainError
from stepup.web import deps
from stepup.web.deps import END_USER_AGENT, END_USER_IP
from stepup.web.idempotency import METHODS, PREFIXES
from stepup.web.openapi_errors import ROUTE_CODES, TITLES
from stepup.web.openapi_examples import EXAMPLES
from stepup.web.problems import PROBLEM_JSON, RETRYABLE_CODES, STATUS_BY_CODE, problem_body

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
    """Add the integration API's headers to its operations, in place: the end user's
    context on the calls about a user, Idempotency-Key wherever the middleware takes
    it, and the RateLimit headers on the answers of both."""
    for path, item in schema.get("paths", {}).items():
        about_a_user = path == INTEGRATION or path.startswith(INTEGRATION + "/")
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            idempotent = _idempotent(path, method)
            if not (about_a_user or idempotent):
                continue
            params = operation.setdefault("parameters", [])
            if about_a_user:
                params.extend(END_USER_HEADERS)
            if idempotent:
                params.append(IDEMPOTENCY_KEY)
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {}).update(RATELIMIT_HEADERS)
    return schema


# --- security: who may call each route ---------------------------------------------------


def security_schemes(session_cookie: str) -> dict[str, Any]:
    return {
        "session": {
            "type": "http", "scheme": "bearer",
            "description": "An end user's session: `Authorization: Bearer <session_token>` "
                           "with the `session_token` of `POST /api/v1/login` or "
                           "`/api/v1/login/verify`."},
        "sessionCookie": {
            "type": "apiKey", "in": "cookie", "name": session_cookie,
            "description": "The session cookie of StepUp's own pages: `stepup_session`, or "
                           "`__Host-stepup_session` where cookies are secure (HTTPS, "
                           "production). A cookie request that changes state (POST, PATCH, "
                           f"DELETE) must also send the `{deps.CSRF_HEADER}` header."},
        "appKey": {
            "type": "http", "scheme": "bearer", "bearerFormat": "sk_app_…",
            "description": "An API key of role `app` (`Authorization: Bearer sk_app_…`, "
                           "`stepup apikey create --app NAME --role app`): it sees only its "
                           "app's users. The requirement lists the scope the call needs."},
        "supportKey": {
            "type": "http", "scheme": "bearer", "bearerFormat": "sk_support_…",
            "description": "An API key of role `support` "
                           "(`Authorization: Bearer sk_support_…`)."},
    }


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    dependant: Dependant


def api_routes(app: FastAPI) -> Iterator[Route]:
    """Every route of the schema, with its full path and its dependencies."""
    contexts: Callable[..., Iterator[Any]] | None = getattr(routing, "iter_route_contexts",
                                                             None)
    # FastAPI 0.165 includes routers lazily: their routes are reached through contexts.
    found: Iterator[Any] = contexts(app.routes) if contexts is not None else iter(app.routes)
    for route in found:
        original = getattr(route, "original_route", route)
        if not isinstance(original, routing.APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            yield Route(method, route.path_format, route.dependant)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def requirements(dependant: Dependant) -> list[dict[str, list[str]]]:
    """The security a route's dependencies ask for; ``[]``: public."""
    for call in _calls(dependant):
        if call is deps.caller:
            return [{"session": []}, {"sessionCookie": []}]
        scope = getattr(call, "api_key_scope", None)
        if scope is not None:
            return [{"appKey": [scope]}]
        if call is deps.support_key:
            return [{"supportKey": []}]
    return []


# --- errors: every problem each route can answer -------------------------------------------


def _titles() -> dict[str, str]:
    out = dict(TITLES)
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        out.setdefault(cls.code, cls.title)
    return out


def route_codes(route: Route, operation: dict[str, Any], security: list[dict[str, Any]]
                ) -> list[str]:
    """The codes a route can answer: its own (the table) first, then those of its
    security, its shape and the service as a whole."""
    codes = list(ROUTE_CODES.get((route.method, route.path), ()))
    if "requestBody" in operation or any(_checked(p) for p in operation.get("parameters", [])):
        codes.append("validation_error")
    if "requestBody" in operation:
        codes += ["bad_request", "payload_too_large"]
    schemes = {name for requirement in security for name in requirement}
    if schemes:
        codes.append("not_authenticated")
    if "sessionCookie" in schemes and route.method not in deps.SAFE_METHODS:
        codes.append("forbidden")  # the CSRF token of a cookie request
    if "appKey" in schemes:
        codes += ["forbidden", "api_quota_exceeded"]  # the key's scope, its rate
        if "{user_id}" in route.path:
            codes.append("not_found")  # not a user of the key's app
    if "supportKey" in schemes:
        codes.append("api_quota_exceeded")
    if _idempotent(route.path, route.method):
        codes += ["validation_error", "idempotency_key_in_use", "idempotency_key_reused"]
    codes += ["service_unavailable", "internal_error"]
    return list(dict.fromkeys(codes))


def _checked(parameter: dict[str, Any]) -> bool:
    """Whether a parameter can fail validation: any but a plain string in the path."""
    schema = {k: v for k, v in parameter.get("schema", {}).items() if k != "title"}
    return parameter.get("in") != "path" or schema != {"type": "string"}


def _field(operation: dict[str, Any], components: dict[str, Any]) -> str:
    """A field the route checks, for the example of its validation problem."""
    ref = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})
           .get("schema", {}).get("$ref", ""))
    body = components.get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    names = [*body.get("required", []), *body.get("properties", {}),
             *(p["name"] for p in operation.get("parameters", []) if _checked(p))]
    return str(names[0]) if names else "body"


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 400)


def example(code: str, title: str, field: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if code == "validation_error":
        message = "Field required"
        return problem_body(code, title, f"{field}: {message}", field=field,
                            errors=[{"field": field, "message": message}])
    elif code in RETRYABLE_CODES or code in ("method_locked", "account_locked"):
        extra = {"retry_after": 30}
    return problem_body(code, title, title, **extra)


RETRY_AFTER = {"description": "Seconds to wait before sending the same request again.",
               "schema": {"type": "integer", "minimum": 0}}
GENERIC = {"Problem document", "Validation problem", "Validation Error"}


def problem_responses(codes: list[str], declared: dict[str, Any], titles: dict[str, str],
                      field: str) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(status_of(code), []).append(code)
    out: dict[str, Any] = {}
    for status, group in sorted(by_status.items()):
        own = declared.get(str(status), {}).get("description", "")
        listed = "\n".join(f"- `{c}`: {titles.get(c, c)}" for c in group)
        first = group[0]
        response: dict[str, Any] = {
            "description": f"{own}\n\n{listed}" if own and own not in GENERIC else listed,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"},
                                       "example": example(first, titles.get(first, first),
                                                          field)}},
            "x-codes": group,
        }
        if any(c in RETRYABLE_CODES or c in ("method_locked", "account_locked")
               for c in group):
            response["headers"] = {"Retry-After": RETRY_AFTER}
        out[str(status)] = response
    return out


def _mentioned(declared: dict[str, Any]) -> list[str]:
    """Codes a route names in the error responses it declares itself."""
    found = []
    for status, response in declared.items():
        text = response.get("description", "") if isinstance(response, dict) else ""
        found += [c for c in STATUS_BY_CODE
                  if str(status_of(c)) == status and re.search(rf"\b{c}\b", text)]
    return found


def secure(schema: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Add security, problem responses and examples to every operation, in place."""
    rt = getattr(app.state, "runtime", None)
    cookie = deps.cookie_name(rt, "stepup_session") if rt is not None else "stepup_session"
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(security_schemes(cookie))
    titles = _titles()
    for route in api_routes(app):
        operation = schema.get("paths", {}).get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue
        security = requirements(route.dependant)
        operation["security"] = security
        responses = operation.setdefault("responses", {})
        declared = {k: responses.pop(k) for k in list(responses) if k[:1] in "45"}
        codes = route_codes(route, operation, security) + _mentioned(declared)
        responses.update(problem_responses(list(dict.fromkeys(codes)), declared, titles,
                                           _field(operation, components)))
        _examples(operation, EXAMPLES.get((route.method, route.path), {}))
    # FastAPI's own validation error schemas are answered by nobody: problems replace them.
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    return schema


def _examples(operation: dict[str, Any], examples: dict[str | int, Any]) -> None:
    """Whole-body examples where the models give none (only field examples)."""
    for key, value in examples.items():
        if key == "request":
            target = operation.get("requestBody", {}).get("content", {})
        else:
            target = operation.get("responses", {}).setdefault(
                str(key), {"description": "Successful Response"}).setdefault(
                "content", {})
        media = target.setdefault("application/json", {})
        if "example" not in media and "examples" not in media:
            media["example"] = value


def install(app: FastAPI, routes: Sequence[BaseRoute] | None = None) -> None:
    """``app.openapi``, listing ``routes`` in their order (default: the app's, as
    matched; app.py passes them as declared, before the busiest move first)."""
    listed = None if routes is None else list(routes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(secure(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes if listed is None else listed), app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
