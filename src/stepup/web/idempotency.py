"""``Idempotency-Key`` on the integration API: an ASGI middleware that lets a portal
retry any POST, PATCH or DELETE after a timeout without doing the work twice.

A call with the header and an active app key is fingerprinted (method, path, query and
body, read here and handed on to the app) and reserved through
``stepup.services.idempotency``; the answer is captured as it streams out and kept when
a replay of it is worth having. A retry gets the kept answer (``Idempotent-Replayed:
true``), 409 ``idempotency_key_in_use`` while the first call runs, or 422
``idempotency_key_reused`` if the key came with another request. No transaction is open
while the app runs.
"""

from __future__ import annotations

import json
import logging

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepup.domain.errors import ApiQuotaExceeded, DomainError, ValidationFailed
from stepup.services import apikeys, idempotency
from stepup.services.idempotency import Stored, Ticket
from stepup.services.runtime import Runtime
from stepup.web.deps import bearer_token
from stepup.web.problems import told

log = logging.getLogger("stepup.web")

# The parts of the API whose changing calls take the header: the integration API.
# Each prefix covers itself and what lies below it.
PREFIXES = ("/api/v1/users", "/api/v1/webhooks")
METHODS = frozenset({"POST", "PATCH", "DELETE"})
HEADER = b"idempotency-key"
REPLAYED = (b"idempotent-replayed", b"true")
# Answers that a retry should not get back: failed authentication (fixed, the retry must
# run) and quotas; plus every 5xx and every problem that says ``retryable``.
NOT_KEPT = frozenset({401, 403, 429})


def applies(scope: Scope) -> bool:
    if scope["type"] != "http" or scope.get("method") not in METHODS:
        return False
    path: str = scope.get("path", "")
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


def worth_keeping(status: int, body: bytes) -> bool:
    """Whether a retry should get this answer back rather than run the call again."""
    if status >= 500 or status in NOT_KEPT:
        return False
    if status >= 400:
        try:
            doc = json.loads(body)
        except ValueError:
            return True
        return not (isinstance(doc, dict) and doc.get("retryable") is True)
    return True


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not applies(scope):
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers", []) if k.lower() == HEADER]
        token = bearer_token(Request(scope)) if values else None
        if token is None or not apikeys.looks_like_key(token):
            await self.app(scope, receive, send)
            return
        rt: Runtime = scope["app"].state.runtime
        key_scope = await idempotency.scope_of(rt, token)
        if key_scope is None:  # not an active app key: the route answers the 401
            await self.app(scope, receive, send)
            return
        try:
            if len(values) != 1:
                raise ValidationFailed("Send one Idempotency-Key.", field="Idempotency-Key")
            key = idempotency.parse_key(values[0].decode("latin-1"))
        except DomainError as err:
            await _answer(rt, token, scope, receive, send, told(rt, err))
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body: nobody to answer
        fp = idempotency.fingerprint(scope["method"], scope["path"],
                                     scope.get("query_string", b""), body)
        try:
            outcome = await idempotency.begin(rt, key_scope, key, fp)
        except DomainError as err:
            await _answer(rt, token, scope, receive, send, told(rt, err))
            return
        if isinstance(outcome, Stored):
            await _answer(rt, token, scope, receive, send, _replay(outcome))
            return
        await self._run(rt, outcome, body, scope, receive, send)

    async def _run(self, rt: Runtime, ticket: Ticket, body: bytes, scope: Scope,
                   receive: Receive, send: Send) -> None:
        """Run the app on the body read, capturing its answer; the answer is kept (or
        the key freed) before its last part goes out, so a client that has the answer
        finds it kept if it retries at once."""
        handed_on = False
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []
        settled = False

        async def replay_body() -> Message:
            nonlocal handed_on
            if not handed_on:
                handed_on = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal status, content_type, settled
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = next((v.decode("latin-1") for k, v in message.get("headers", [])
                                     if k.lower() == b"content-type"), None)
            elif message["type"] == "http.response.body" and not settled:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    settled = True
                    await _settle(rt, ticket, status, content_type, b"".join(chunks))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if not settled:  # the app failed or was cancelled before answering in full
                with anyio.CancelScope(shield=True):
                    await _release(rt, ticket)


async def _settle(rt: Runtime, ticket: Ticket, status: int, content_type: str | None,
                  body: bytes) -> None:
    if not worth_keeping(status, body):
        await _release(rt, ticket)
        return
    try:
        await idempotency.finish(rt, ticket, status, content_type, body)
    except Exception:  # the answer still goes out; the lease lets a retry take over
        log.exception("could not keep the answer of an idempotent request")


async def _release(rt: Runtime, ticket: Ticket) -> None:
    try:
        await idempotency.release(rt, ticket)
    except Exception:  # the lease runs out instead, and a retry takes over
        log.exception("could not release an idempotency key")


async def _answer(rt: Runtime, token: str, scope: Scope, receive: Receive, send: Send,
                  response: Response) -> None:
    """Answer without running the app, as the app would: the call is counted against
    the key's rate (its RateLimit headers go out with it), and a key over its quota or
    no longer valid gets that problem instead."""
    state = scope.setdefault("state", {})
    try:
        auth = await apikeys.authenticate(rt, token, "app")
    except ApiQuotaExceeded as err:
        state["quota"] = (err.limit, 0, err.retry_after or 60)
        response = told(rt, err)
    except DomainError as err:
        response = told(rt, err)
    else:
        state["quota"] = (auth.quota.limit, auth.quota.remaining, auth.quota.reset)
    await response(scope, receive, send)


def _replay(stored: Stored) -> Response:
    response = Response(stored.body, status_code=stored.status)
    headers = [(k, v) for k, v in response.raw_headers if k != b"content-type"]
    if stored.content_type:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    response.raw_headers = [*headers, REPLAYED]
    return response


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (its size is already capped by ``BodyLimit``); None if
    the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
