"""Hot routes whose arguments are solved by hand instead of by FastAPI's generic machinery.

A FastAPI route is declared once (its path, body model, dependencies, answer model: the
OpenAPI document and the matching of requests come from that) and answered per request
by a handler FastAPI builds from the declaration: it reads the body, solves each
parameter and dependency through generic code (an exit stack for every generator
dependency, a shielded exit, a context per request), calls the route's function and
validates its answer against the answer model again. A route with a JSON body and a
generator dependency cost ~0.66 M instructions that way, ~0.23 M with a handler of its
own doing the same steps. Measured on the whole calls (bench/instructions.py): the
integration verify 3.44 → 3.16 M, the login step 5.51 → 5.37 M.

:func:`answer` gives a declared route such a handler: the route stays FastAPI's (the
same path, methods, name, OpenAPI entry and 405s) and its own function still does the
work; only the solving of its arguments is this route's own, in FastAPI's order:

1. the body is read and parsed as FastAPI does for a JSON body (:func:`json_body`: a
   body that is not JSON is answered 422 ``json_invalid`` before anything else);
2. the dependencies run (the route's handler enters them itself);
3. the body is validated against its model (:func:`validated`), the errors placed as
   FastAPI places them (``("body", field)``), so the problem document is the same;
4. the function's answer is sent as its ``response_model`` would send it
   (:func:`model_response`).

tests/api/test_direct_routes.py checks that each route answered here declares exactly
the arguments its handler solves, so the two cannot drift apart.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router, request_response

Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]

# No body at all (FastAPI's ``Undefined``): a required body model is "missing".
NO_BODY: Any = object()


def answer(router: Router, method: str, path: str, handler: Handler) -> APIRoute:
    """Let ``handler`` answer the route ``method path`` of ``router`` (declared there as
    usual); the declared route, returned."""
    for route in router.routes:
        if (isinstance(route, APIRoute) and route.path == path
                and method in (route.methods or ())):
            route.app = request_response(handler)
            return route
    raise LookupError(f"no route {method} {path} to answer")


async def json_body(request: Request) -> Any:
    """The request's body as FastAPI reads a JSON body (``fastapi.routing``,
    ``get_request_handler``; routes are strict about the content type): parsed when the
    content type is ``application/json`` or ``application/*+json``, the raw bytes
    otherwise (which then fail the model's validation), ``NO_BODY`` when empty."""
    raw = await request.body()
    if not raw:
        return NO_BODY
    content_type = request.headers.get("content-type")
    if not content_type:
        return raw
    if content_type != "application/json":  # parsed only when it is not the usual one
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (
                subtype == "json" or subtype.endswith("+json")):
            return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except Exception as exc:  # not UTF-8, …: what FastAPI answers
        raise HTTPException(status_code=400,
                            detail="There was an error parsing the body") from exc


def validated(model: type[Model], body: Any) -> Model:
    """``body`` (from ``json_body``) as ``model``, or the 422 FastAPI raises for it."""
    if body is NO_BODY:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])}
             for error in exc.errors(include_url=False)], body=body) from None


def model_response(out: BaseModel, status_code: int = 200) -> Response:
    """``out`` as a route with ``response_model_exclude_none=True`` sends it."""
    return Response(out.model_dump_json(by_alias=True, exclude_none=True),
                    status_code=status_code, media_type="application/json")
