"""The busiest calls are found at once: a route that does not match still costs a check
(web/flat_routes.py), and FastAPI's included routers cost several. Moving them first
changes no answer and leaves the OpenAPI document as declared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from stepup.web import app as app_module

# (method, request path, the template of the route that must answer it), in the order
# app.py's BUSIEST tries them: the n-th is found at the n-th check.
BUSIEST = [
    ("POST", "/api/v1/users/u1/verify", "/api/v1/users/{user_id}/verify"),
    ("POST", "/api/v1/login/verify", "/api/v1/login/verify"),
    ("POST", "/api/v1/users/u1/challenge", "/api/v1/users/{user_id}/challenge"),
    ("POST", "/api/v1/login/challenge", "/api/v1/login/challenge"),
    ("GET", "/login/second-factor", "/login/second-factor"),
    ("POST", "/login/second-factor", "/login/second-factor"),
]


async def test_the_busiest_calls_are_found_at_their_first_checks(
        app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[tuple[BaseRoute, Match]] = []
    for route in app.router.routes:
        def counted(scope: Any, route: BaseRoute = route,
                    matches: Any = route.matches) -> tuple[Match, Any]:
            match, child = matches(scope)
            checks.append((route, match))
            return match, child  # type: ignore[no-any-return]
        monkeypatch.setattr(route, "matches", counted)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for n, (method, path, template) in enumerate(BUSIEST, 1):
            checks.clear()
            await c.request(method, path, json={})
            assert checks[-1][1] == Match.FULL, (method, path)
            answered = checks[-1][0]
            assert getattr(answered, "path", None) == template, (method, path, answered)
            assert len(checks) == n, f"{method} {path}: {len(checks)} route checks"


def test_the_document_lists_the_routes_as_declared(app: FastAPI) -> None:
    assert getattr(app.routes[0], "path", None) == BUSIEST[0][2]  # tried first, yet:
    paths = list(app.openapi()["paths"])
    assert paths[0] == "/api/v1/accounts"  # accounts' router is declared first
    assert paths.index("/api/v1/users/{user_id}/verify") > paths.index("/api/v1/users")


def _probes(routes: list[BaseRoute]) -> Iterator[tuple[str, str]]:
    """Each route's own path (parameters filled in), with and without a trailing slash,
    under every method: what a route's neighbours could also match."""
    for route in routes:
        template = getattr(route, "path", "")
        filled = "/".join("x1" if "{" in part else part for part in template.split("/"))
        for path in {filled or "/", filled.rstrip("/") + "/"}:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                yield method, path


def _answer(routes: list[BaseRoute], method: str, path: str) -> tuple[str, ...]:
    """The route Starlette picks: the first full match, else the first partial (405)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    partial: tuple[str, ...] = ("404",)
    for route in routes:
        match, _ = route.matches(dict(scope))
        found = (str(getattr(route, "path", route)), repr(getattr(route, "methods", None)))
        if match == Match.FULL:
            return ("full", *found)
        if match == Match.PARTIAL and partial == ("404",):
            partial = ("405", *found)
    return partial


def test_every_route_answers_the_same_requests_as_declared(
        app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module.flat_routes, "busiest_first", lambda router, calls: None)
    declared = app_module.create_app(app.state.runtime.settings,
                                     runtime=app.state.runtime, migrate_on_start=False)
    assert [getattr(r, "path", r) for r in declared.routes] != [
        getattr(r, "path", r) for r in app.routes]
    for method, path in _probes(app.routes):
        assert _answer(app.routes, method, path) == _answer(declared.routes, method, path), (
            method, path)
