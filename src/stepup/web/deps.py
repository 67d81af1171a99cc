"""Request dependencies: the runtime, who is asking, sessions and CSRF.

End users authenticate with ``Authorization: Bearer <session token>`` or the portal's
session cookie. Cookie requests that change state must carry the CSRF token, which is an
HMAC of the session id (or, before login, of a random pre-session cookie): a page of
another site can neither read it nor forge it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.errors import (
    ApiQuotaExceeded,
    Forbidden,
    NotAuthenticated,
    NotFound,
    ValidationFailed,
)
from stepup.domain.hashing import new_token
from stepup.services import apikeys, sessions
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import ApiKey, User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def cookie_name(rt: Runtime, base: str) -> str:
    # __Host- cookies are Secure, host-only and path=/ by browser rule.
    return f"__Host-{base}" if rt.settings.secure_cookies else base


def client_ip(request: Request, trusted: list[str]) -> str | None:
    peer = request.client.host if request.client else None
    if peer is None or not trusted or not _in_networks(peer, trusted):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # The rightmost address that is not one of our proxies is the client.
    for hop in reversed(hops):
        if not _in_networks(hop, trusted):
            return hop
    return peer


def _in_networks(addr: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def actor(request: Request) -> Actor:
    rt = runtime(request)
    return Actor(ip=client_ip(request, rt.settings.trusted_proxies),
                 user_agent=request.headers.get("user-agent"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@dataclass
class Caller:
    user: User
    session_id: str
    via_cookie: bool


def csrf_token_for(rt: Runtime, session_id: str) -> str:
    return rt.hasher.mac("csrf", session_id)


def pre_session(request: Request) -> str | None:
    return request.cookies.get(cookie_name(runtime(request), "stepup_pre"))


def new_pre_session() -> str:
    return new_token()


def check_csrf(request: Request, rt: Runtime, bound_to: str, supplied: str | None) -> None:
    if not supplied or not rt.hasher.mac_ok(supplied, "csrf", bound_to):
        raise Forbidden(situation="csrf")


async def caller(request: Request) -> Caller:
    rt = runtime(request)
    token = bearer_token(request)
    via_cookie = False
    if token is None:
        token = request.cookies.get(cookie_name(rt, "stepup_session"))
        via_cookie = token is not None
    if token is None:
        raise NotAuthenticated()
    auth = await sessions.resolve(rt, token)
    if via_cookie and request.method not in SAFE_METHODS:
        check_csrf(request, rt, auth.session.id, request.headers.get(CSRF_HEADER))
    return Caller(user=auth.user, session_id=auth.session.id, via_cookie=via_cookie)


END_USER_IP = "StepUp-End-User-IP"
END_USER_AGENT = "StepUp-End-User-Agent"


def app_actor(request: Request, key: ApiKey) -> Actor:
    """Who is asking when a portal calls: its end user, as the portal forwards them
    (``StepUp-End-User-IP``, ``StepUp-End-User-Agent``). The portal's own address is
    never taken for its user's: without the header the user's address is unknown."""
    ip = request.headers.get(END_USER_IP)
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            raise ValidationFailed(f"{END_USER_IP} must be an IPv4 or IPv6 address.",
                                   field=END_USER_IP) from None
    agent = request.headers.get(END_USER_AGENT)
    if agent is not None and (len(agent) > 512 or not agent.isprintable()):
        raise ValidationFailed(f"{END_USER_AGENT} must be printable, at most 512 characters.",
                               field=END_USER_AGENT)
    return Actor(ip=ip, user_agent=agent or None, name=f"app:{key.id}", app_id=key.app_id,
                 via_ip=client_ip(request, runtime(request).settings.trusted_proxies))


def _quota_state(request: Request, limit: int, remaining: int, reset: int) -> None:
    # Read by web.middleware.Answers for whatever the answer turns out to be.
    request.state.quota = (limit, remaining, reset)


def _token(request: Request, role: str) -> str:
    token = bearer_token(request)
    if token is None or not apikeys.looks_like_key(token):
        raise NotAuthenticated(f"This call needs an API key: Authorization: Bearer "
                               f"sk_{role}_…")
    return token


def _user_id(request: Request, role: str) -> str | None:
    return request.path_params.get("user_id") if role == "app" else None


def _admitted(request: Request, role: str, auth: apikeys.Authenticated) -> ApiKey:
    _quota_state(request, auth.quota.limit, auth.quota.remaining, auth.quota.reset)
    if role == "app" and not auth.owns_user:
        # Another app's user is no user at all to this key.
        raise NotFound("No such user.")
    return auth.key


async def _key(request: Request, role: str, scope: str | None) -> ApiKey:
    token = _token(request, role)
    try:
        auth = await apikeys.authenticate(runtime(request), token, role, scope,
                                          user_id=_user_id(request, role))
    except ApiQuotaExceeded as err:
        _quota_state(request, err.limit, 0, err.retry_after or 60)
        raise
    return _admitted(request, role, auth)


@dataclass(frozen=True)
class HeldKey:
    """An app key, and the open transaction its call is counted in (``apikeys.held``)."""

    key: ApiKey
    db: AsyncSession
    #: The check's read fetched with the key (``key_held``'s ``check``).
    ahead: apikeys.ReadAhead | None = None


def app_key_held(scope: str) -> Callable[[Request], AsyncIterator[HeldKey]]:
    """``app_key(scope)`` for a hot route whose work joins the transaction that counted
    the call (``apikeys.held``): one transaction instead of two. Use it with
    ``Depends(..., scope="function")``, so that the transaction ends with the route's
    function, before the answer is sent; a route answered by web/direct.py enters
    ``key_held`` itself."""

    async def dependency(request: Request) -> AsyncIterator[HeldKey]:
        async with key_held(request, scope) as held:
            yield held

    dependency.api_key_scope = scope  # type: ignore[attr-defined]
    return dependency


@asynccontextmanager
async def key_held(request: Request, scope: str, check: apikeys.CheckRead | None = None
                   ) -> AsyncIterator[HeldKey]:
    """The app key of ``request`` checked for ``scope`` and its call counted, in an open
    transaction for the route's work (``app_key_held``'s work). ``check``: the first read
    of that work, to fetch with the key (``apikeys.held``)."""
    token = _token(request, "app")

    def counted(quota: apikeys.Quota) -> None:
        # On PostgreSQL the call is counted when the route's work commits: what is left
        # of the quota is known for sure from then on.
        _quota_state(request, quota.limit, quota.remaining, quota.reset)

    try:
        async with apikeys.held(runtime(request), token, "app", scope,
                                user_id=_user_id(request, "app"),
                                on_count=counted, check=check) as held:
            yield HeldKey(_admitted(request, "app", held.auth), held.db, held.ahead)
    except ApiQuotaExceeded as err:
        _quota_state(request, err.limit, 0, err.retry_after or 60)
        raise


def app_key(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency: an API key of role ``app`` allowed ``scope`` calls, within its rate;
    a ``{user_id}`` in the path must be one of the key's app's users (else 404)."""

    async def dependency(request: Request) -> ApiKey:
        return await _key(request, "app", scope)

    # Read by web.openapi: which security scheme, and which scope, the route declares.
    dependency.api_key_scope = scope  # type: ignore[attr-defined]
    return dependency


async def support_key(request: Request) -> ApiKey:
    """A dependency: an API key of role ``support`` (an ``app`` key is refused)."""
    return await _key(request, "support", None)
