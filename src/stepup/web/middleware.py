"""ASGI middleware: body size limit, security headers on every answer, and the end of
any unexpected error."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepup import metrics
from stepup.web.problems import PROBLEM_JSON, problem_body, unexpected

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with a 413 problem, declared or streamed.

    A body without a Content-Length (chunked) is read here first, up to the limit, and
    handed on whole: refusing it half-way through the app's own reading would surface as
    the framework's "error parsing the body" instead of a 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = problem_body("payload_too_large", "The request body is too large",
                            f"Requests are limited to {self.max_bytes} bytes.")
        raw = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(raw)).encode()),
                                (b"cache-control", b"no-store"), *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": raw})


class Answers:
    """What every answer carries, added as it starts, and what it took:

    - the security headers (and ``Cache-Control: no-store`` outside ``/static``; HSTS
      when cookies are secure), unless the route set its own;
    - the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on every answer
      to an API key, errors included: the key's policy (calls per 60-second window) and
      what is left of it, which the key's dependency leaves in the request's state;
    - its latency, per route template (``/api/v1/users/{user_id}/verify``), never per
      raw path, so user ids do not explode the label space.

    One middleware, one wrapper of ``send``: as three, each answer passed three more
    layers (bench/README.md, round 7)."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": self._headers(
                    scope, list(message.get("headers", [])))}
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            metrics.request_took(scope.get("method", ""), _route_template(scope), status,
                                 time.perf_counter() - started)

    def _headers(self, scope: Scope, headers: list[Any]) -> list[Any]:
        quota = scope.get("state", {}).get("quota")
        if quota is not None:
            limit, remaining, reset = quota
            headers += [(b"ratelimit-policy", f'"key";q={limit};w=60'.encode()),
                        (b"ratelimit", f'"key";r={remaining};t={reset}'.encode())]
        path: str = scope.get("path", "")
        names = {h[0].lower() for h in headers}
        docs = path in ("/docs", "/redoc")
        for name, value in SECURITY_HEADERS:
            if name not in names and not (docs and name == b"content-security-policy"):
                headers.append((name, value))
        if b"cache-control" not in names and not path.startswith("/static/"):
            headers.append((b"cache-control", b"no-store"))
        if self.hsts:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        return headers


def _route_template(scope: Scope) -> str:
    """The matched route's template, whole: the app's routes are copied flat with their
    prefixes (web/flat_routes.py), so no router's prefix is missing from it."""
    template = getattr(scope.get("route"), "path", None)
    return str(template) if template else "unmatched"


class UnexpectedErrors:
    """An exception no handler took becomes a 500 problem document, and ends here.

    Starlette's ServerErrorMiddleware answers such an error with the app's 500 handler
    and then raises it again (for servers to log it); uvicorn, seeing the app fail after
    its answer started, closes the connection, and the answer has passed none of the
    middleware (no security headers, no ``Cache-Control``). Here the error is logged once
    and answered, and the app returns normally: the connection serves the next request.
    Once an answer has started nothing truthful can follow, so the error goes on and the
    server cuts the connection (a truncated answer, never a wrong one).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception as err:
            if started:
                raise
            response = unexpected(err)
            # Also complete where this runs outside SecurityHeaders.
            for name, value in SECURITY_HEADERS:
                response.headers.setdefault(name.decode(), value.decode())
            response.headers.setdefault("cache-control", "no-store")
            await response(scope, receive, send)
