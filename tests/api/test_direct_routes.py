"""The routes answered by a handler of their own (web/direct.py) answer every request as
FastAPI's handler for their declaration would: the same status, body and headers for
good calls and for every kind of bad body, and they declare exactly the arguments their
handlers solve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, request_response

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.web.api.schemas import LoginVerifyIn
from stepup.web.api.users import VerifyIn
from stepup.web.app import create_app
from tests.api.test_headless import enrol_totp, h, new_user

VERIFY = "/api/v1/users/{user_id}/verify"
LOGIN_VERIFY = "/api/v1/login/verify"


def _route(app: FastAPI, path: str) -> APIRoute:
    found = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path == path]
    assert len(found) == 1
    return found[0]


def _frameworks_own(app: FastAPI) -> FastAPI:
    """``app`` with FastAPI's generic handlers back on the routes answered directly."""
    for path in (VERIFY, LOGIN_VERIFY):
        route = _route(app, path)
        route.app = request_response(route.get_route_handler())
    return app


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def test_the_routes_declare_what_their_handlers_solve(app: FastAPI) -> None:
    verify = _route(app, VERIFY).dependant
    assert [p.name for p in verify.path_params] == ["user_id"]
    assert [p.field_info.annotation for p in verify.body_params] == [VerifyIn]
    assert [getattr(d.call, "api_key_scope", None) for d in verify.dependencies] == ["verify"]
    assert not (verify.query_params or verify.header_params or verify.cookie_params)
    login = _route(app, LOGIN_VERIFY).dependant
    assert [p.field_info.annotation for p in login.body_params] == [LoginVerifyIn]
    assert not (login.path_params or login.dependencies or login.query_params
                or login.header_params or login.cookie_params)


# (content type, body) pairs FastAPI answers 422, 400 or 401 before any work.
BAD_BODIES: list[tuple[str | None, bytes]] = [
    ("application/json", b""),
    ("application/json", b"{not json"),
    ("application/json", b"[]"),
    ("application/json", b"\"totp\""),
    ("application/json", b"{}"),
    ("application/json", b'{"method": "totp"}'),
    ("application/json", b'{"method": "totp", "code": 123456}'),
    ("application/json", b'{"method": "totp", "code": "' + b"1" * 300 + b'"}'),
    ("application/json", b'{"method": "totp", "code": "123456", "purpose": null}'),
    ("application/json", b'\xff\xfe{"method": "totp"}'),
    ("application/json; charset=utf-8", b'{"method": "totp"}'),
    ("application/problem+json", b'{"method": "totp"}'),
    ("text/plain", b'{"method": "totp", "code": "123456"}'),
    (None, b'{"method": "totp", "code": "123456"}'),
]


def _comparable(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "ratelimit"))
    return r.status_code, r.content, headers


@pytest.mark.parametrize(("content_type", "raw"), BAD_BODIES)
async def test_a_bad_body_is_answered_as_fastapi_answers_it(
        settings: Settings, runtime: Runtime, content_type: str | None, raw: bytes) -> None:
    _, key = await apikeys.create(runtime, "portal", "app", Actor(name="t"))
    answers: list[list[tuple[int, bytes, list[tuple[str, str]]]]] = []
    for app in (create_app(settings, runtime=runtime, migrate_on_start=False),
                _frameworks_own(create_app(settings, runtime=runtime,
                                           migrate_on_start=False))):
        async with _client(app) as c:
            got = []
            for path, headers in (("/api/v1/users/nobody/verify", h(key)),
                                  ("/api/v1/users/nobody/verify", {}),
                                  ("/api/v1/users/nobody/verify", h("sk_app_wrong")),
                                  (LOGIN_VERIFY, {})):
                sent = {**headers, **({"content-type": content_type} if content_type else {})}
                got.append(_comparable(await c.post(path, content=raw, headers=sent)))
            answers.append(got)
    direct, generic = answers
    assert direct == generic
    assert all(status >= 400 for status, _, _ in direct)


async def test_a_good_call_is_answered_as_fastapi_answers_it(
        settings: Settings, runtime: Runtime, client: httpx.AsyncClient,
        clock: FrozenClock) -> None:
    _, key = await apikeys.create(runtime, "portal", "app", Actor(name="t"))
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    bodies: list[Any] = []
    for app in (create_app(settings, runtime=runtime, migrate_on_start=False),
                _frameworks_own(create_app(settings, runtime=runtime,
                                           migrate_on_start=False))):
        clock.advance(30)  # a fresh time step for each
        async with _client(app) as c:
            r = await c.post(f"/api/v1/users/{uid}/verify", headers=h(key),
                             json={"method": "totp", "code": pyotp.TOTP(secret).at(clock.now())})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.headers["ratelimit-policy"] == '"key";q=6000;w=60'
        body = r.json()
        assert body.pop("verified_at") == clock.now().isoformat().replace("+00:00", "Z")
        bodies.append(body)
    assert bodies[0] == bodies[1] == {"valid": True, "method": "totp"}
