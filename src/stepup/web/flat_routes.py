"""Routers included as plain routes of the router that includes them.

FastAPI 0.165's ``include_router`` keeps each included router as a branch of its own
(``fastapi.routing._IncludedRouter``) and resolves its routes per request: the app tries
each branch in turn, a branch tries each of its routes through a per-request context
(several Python calls a route around its regular expression), and the branch that
matches is walked a second time to dispatch. Finding the route cost a verify ~0.67 M
instructions (of ~5.9 M: 34 route checks) and the portal's second-factor form, whose
router is a branch of branches after every API router, ~1.9 M.

:func:`include` adds a copy of each route to the including router instead, through
FastAPI's own ``add_api_route`` with the attributes the route was declared with (those
that FastAPI's branch copies per route, ``_EffectiveRouteContext.from_api_route``). The
including router's prefix, tags, dependencies and responses apply as with
``include_router``; the routes keep their order, so the same route answers every request
(405 included) and the OpenAPI document is the same, key for key and in the same order.
Copies are made when called: routes added to ``router`` afterwards are not seen.

Making a copy builds its models and dependencies again (pydantic schemas: ~0.4 s for all
of StepUp's routes, the better part of building an app). A process that builds the app
again (the test suite builds one to four a test) takes the copies it made for the same
router, prefix and parent configuration, each copied once more with a request handler of
its own for the new parent, as FastAPI's own would be (its dependency overrides), made
at the route's first request: a test calls few of its app's routes.

Flat, a route that does not match still costs a check (~9,500 instructions): the verify,
declared 25th, still paid ~0.29 M, the portal's form ~0.88 M. :func:`busiest_first` moves
a few routes to the front (0.03 M and 0.09 M), past no route that could have answered
one of their requests.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi._body_limit import wrap_app_with_body_limit  # as APIRoute.__init__ uses it
from fastapi.routing import APIRoute, request_response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send


def include(parent: APIRouter, router: APIRouter, prefix: str = "") -> None:
    """``parent.include_router(router, prefix=prefix)``, with ``router``'s routes copied
    into ``parent``. Only what our routers use is taken: plain FastAPI routes (any
    ``route_class``) and no router-wide form limits or events (nor a lifespan, which
    none of ours has); anything else is refused rather than copied wrong."""
    if router.form_limits or router.on_startup or router.on_shutdown:
        raise TypeError("include(): router-wide form limits or events are not copied")
    key, bearing, declared = (id(router), prefix), _bearing(parent), tuple(router.routes)
    made = _made.get(key)
    if made is not None and made[0] is router and made[1] == bearing \
            and _same(made[2], declared):
        for template in made[3]:
            parent.routes.append(_again(template, parent))
        parent._mark_routes_changed()
        return
    first = len(parent.routes)
    for route in declared:
        if not isinstance(route, APIRoute) or route.stream_item_type is not None:
            raise TypeError(f"include(): cannot copy {route!r}; use include_router")
        parent.add_api_route(
            prefix + route.path, route.endpoint,
            response_model=route.response_model, status_code=route.status_code,
            tags=route.tags, dependencies=route.dependencies, summary=route.summary,
            description=route.description,
            response_description=route.response_description, responses=route.responses,
            deprecated=route.deprecated, methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema, response_class=route.response_class,
            name=route.name, route_class_override=type(route), callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size, form_limits=route.form_limits or None,
        )
    # Kept without the parent, which they would keep alive with all it holds.
    copies = [_again(r, None) for r in parent.routes[first:] if isinstance(r, APIRoute)]
    _made[key] = (router, bearing, declared, copies)


# (id(router), prefix) -> the router, its parent's bearing, its routes, the copies made.
_Made = tuple[APIRouter, tuple[Any, ...], tuple[Any, ...], list[APIRoute]]
_made: dict[tuple[int, str], _Made] = {}


def _same(these: tuple[Any, ...], those: tuple[Any, ...]) -> bool:
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=True))


def _bearing(parent: APIRouter) -> tuple[Any, ...]:
    """What ``parent.add_api_route`` brings to a copy besides the route's own."""
    return (parent.prefix, parent.tags, parent.dependencies, parent.responses,
            parent.default_response_class, parent.callbacks, parent.deprecated,
            parent.include_in_schema, parent.generate_unique_id_function,
            parent.strict_content_type, parent.max_body_size)


def _again(made: APIRoute, parent: APIRouter | None) -> APIRoute:
    """``made`` for ``parent``: its models and dependencies shared (they describe the
    endpoint alone), its request handler made anew, when first needed."""
    route = copy.copy(made)
    route.dependency_overrides_provider = parent and parent.dependency_overrides_provider
    route.app = _Handler(route)
    return route


class _Handler:
    """A copy's request handler, made at the route's first request as
    ``APIRoute.__init__`` makes it, and put in this one's place."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.route
        if route.app is self:
            route.app = wrap_app_with_body_limit(request_response(route.get_route_handler()),
                                                 route.max_body_size)
        await route.app(scope, receive, send)


def busiest_first(router: APIRouter, calls: Sequence[tuple[str, str]]) -> None:
    """Put the routes of ``calls`` (method, path template) first in ``router``, in that
    order, the others after them as they were.

    A request is answered by the first route whose path matches it (the first whose
    method matches too, else the first by path alone: 405), and ``url_path_for`` takes
    the first route of a name; so the answers stay the same if no moved route passes a
    route that could match one of its paths or that bears its name. That is checked
    here, conservatively (a path parameter may match any segment; a mount or a
    multi-segment parameter may match anything), and anything else is refused."""
    declared = list(router.routes)
    moved = [_route(declared, method, path) for method, path in calls]
    rest = [r for r in declared if all(r is not m for m in moved)]
    before = {id(r): i for i, r in enumerate(declared)}
    for i, route in enumerate(moved):
        passed = [r for r in [*moved[i + 1:], *rest] if before[id(r)] < before[id(route)]]
        for other in passed:
            if _may_share_a_path(route, other) or route.name == getattr(other, "name", None):
                raise ValueError(f"{route.path} cannot be matched before {other!r}: "
                                 "the same request or name could reach both")
    router.routes[:] = [*moved, *rest]


def _route(routes: list[BaseRoute], method: str, path: str) -> Route:
    found = [r for r in routes
             if isinstance(r, Route) and r.path == path and method in (r.methods or ())]
    if len(found) != 1:
        raise ValueError(f"busiest_first(): {method} {path} is not one route")
    return found[0]


def _may_share_a_path(route: Route, other: BaseRoute) -> bool:
    if not isinstance(other, Route) or ":path}" in route.path + other.path:
        return True
    mine, theirs = route.path.split("/"), other.path.split("/")
    return len(mine) == len(theirs) and all(
        a == b or "{" in a or "{" in b for a, b in zip(mine, theirs, strict=True))
