"""web/flat_routes.py: a router copied in answers as FastAPI's include_router would, and
moving the busiest routes first is refused wherever it could change an answer."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from stepup.web import flat_routes


class Marked(APIRoute):
    """A route class of its own (as the portal's PortalRoute): it must be kept."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response: Response = await handler(request)
            response.headers["x-route-class"] = "marked"
            return response

        return route


class Item(BaseModel):
    name: str
    size: int = 1


def _seen(request: Request) -> None:
    request.state.seen = "router"


def _routers() -> tuple[APIRouter, APIRouter]:
    inner = APIRouter(prefix="/inner", tags=["inner"], include_in_schema=False)

    @inner.get("/hidden")
    async def hidden() -> dict[str, str]:
        return {"at": "hidden"}

    outer = APIRouter(prefix="/things", tags=["things"], route_class=Marked,
                      dependencies=[Depends(_seen)],
                      responses={404: {"description": "No such thing"}})

    @outer.get("/{thing_id}", summary="One thing")
    async def one(thing_id: int, request: Request) -> dict[str, Any]:
        """A thing.\f Not in the document."""
        return {"id": thing_id, "seen": request.state.seen}

    @outer.post("", status_code=201, response_model=Item, response_model_exclude_unset=True)
    async def make(item: Item, q: str | None = None) -> Item:
        return item

    @outer.delete("/{thing_id}", status_code=204, deprecated=True)
    async def drop(thing_id: int) -> None:
        return None

    return inner, outer


def _app(flat: bool) -> FastAPI:
    app = FastAPI(responses={400: {"description": "Problem"}})
    inner, outer = _routers()
    for router in (outer, inner):
        if flat:
            flat_routes.include(app.router, router, prefix="/v1")
        else:
            app.include_router(router, prefix="/v1")
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


REQUESTS = [("GET", "/v1/things/7", None), ("GET", "/v1/things/x", None),
            ("POST", "/v1/things", {"name": "a"}), ("POST", "/v1/things", {"size": 2}),
            ("DELETE", "/v1/things/7", None), ("PUT", "/v1/things/7", None),
            ("GET", "/v1/things/7/", None), ("GET", "/v1/inner/hidden", None),
            ("GET", "/v1/nothing", None), ("GET", "/things/7", None)]


async def test_include_answers_as_include_router() -> None:
    nested, flat = _app(flat=False), _app(flat=True)
    assert flat.openapi() == nested.openapi()
    assert list(flat.openapi()["paths"]) == list(nested.openapi()["paths"])
    async with _client(nested) as a, _client(flat) as b:
        for method, path, body in REQUESTS:
            ra = await a.request(method, path, json=body)
            rb = await b.request(method, path, json=body)
            assert (rb.status_code, rb.content) == (ra.status_code, ra.content), (method, path)
            for header in ("allow", "location", "x-route-class"):
                assert rb.headers.get(header) == ra.headers.get(header), (method, path, header)
    assert all(type(r) is Marked for r in flat.routes if getattr(r, "path", "") == "/v1/things")


def test_include_refuses_what_it_would_not_copy() -> None:
    plain = APIRouter()  # a Starlette route: not copied
    plain.add_route("/plain", lambda request: Response())
    with pytest.raises(TypeError):
        flat_routes.include(FastAPI().router, plain)


def _override(request: Request) -> None:
    request.state.seen = "override"


def _built(inner: APIRouter, outer: APIRouter, **kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)
    for router in (outer, inner):
        flat_routes.include(app.router, router, prefix="/v1")
    return app


async def test_a_second_app_takes_the_copies_with_handlers_of_its_own() -> None:
    inner, outer = _routers()
    first, second = _built(inner, outer), _built(inner, outer)
    assert second.openapi() == first.openapi()
    one = {id(r) for r in first.routes}
    assert not any(id(r) in one for r in second.routes)
    # The models were made once (what makes a second app cheap) ...
    assert [r.dependant for r in second.routes if isinstance(r, APIRoute)] == [
        r.dependant for r in first.routes if isinstance(r, APIRoute)]
    # ... and each app's own dependency overrides apply to it alone.
    second.dependency_overrides[_seen] = _override
    async with _client(first) as a, _client(second) as b:
        assert (await a.get("/v1/things/7")).json()["seen"] == "router"
        assert (await b.get("/v1/things/7")).json()["seen"] == "override"
        for method, path, body in REQUESTS:
            ra = await a.request(method, path, json=body)
            rb = await b.request(method, path, json=body)
            if path != "/v1/things/7" or method != "GET":
                assert (rb.status_code, rb.content) == (ra.status_code, ra.content)


async def test_copies_are_made_again_for_routes_added_since() -> None:
    inner, outer = _routers()
    _built(inner, outer)

    @outer.get("/later/one")
    async def later() -> dict[str, str]:
        return {"at": "later"}

    async with _client(_built(inner, outer)) as c:
        assert (await c.get("/v1/things/later/one")).json() == {"at": "later"}


def test_copies_are_made_again_for_a_parent_configured_otherwise() -> None:
    inner, outer = _routers()
    _built(inner, outer)
    again = _built(inner, outer, responses={418: {"description": "Teapot"}})
    operation = again.openapi()["paths"]["/v1/things/{thing_id}"]["get"]
    assert "418" in operation["responses"]


def test_the_copies_kept_do_not_keep_an_app_alive() -> None:
    inner, outer = _routers()
    app = _built(inner, outer)
    gone = weakref.ref(app)
    del app
    gc.collect()
    assert gone() is None


def _router(*routes: tuple[str, str, str]) -> APIRouter:
    router = APIRouter()
    for method, path, name in routes:
        router.add_api_route(path, lambda: None, methods=[method], name=name)
    return router


def _order(router: APIRouter) -> list[str]:
    return [f"{sorted(getattr(r, 'methods', None) or ['*'])[0]} {getattr(r, 'path', '')}"
            for r in router.routes]


def test_busiest_first_moves_routes_that_share_no_path() -> None:
    router = _router(("GET", "/a", "a"), ("POST", "/a/{x}/b", "b"), ("GET", "/c/{y}", "c"),
                     ("POST", "/c/{y}/verify", "verify"))
    flat_routes.busiest_first(router, [("POST", "/c/{y}/verify"), ("GET", "/c/{y}")])
    assert _order(router) == ["POST /c/{y}/verify", "GET /c/{y}", "GET /a", "POST /a/{x}/b"]


@pytest.mark.parametrize("passed", [
    ("GET", "/c/verify", "other"),   # the same path, another method: its 405 would change
    ("GET", "/c/{y}", "other"),      # a parameter could be "verify"
    ("GET", "/{z}/verify", "other"),
    ("GET", "/d/e", "verify"),       # the same name: url_path_for would change
])
def test_busiest_first_refuses_to_pass_a_route_that_could_answer(
        passed: tuple[str, str, str]) -> None:
    router = _router(passed, ("POST", "/c/verify", "verify"))
    with pytest.raises(ValueError):
        flat_routes.busiest_first(router, [("POST", "/c/verify")])
    assert _order(router)[-1] == "POST /c/verify"  # left as it was


def test_busiest_first_refuses_to_pass_a_mount_or_a_path_parameter() -> None:
    app = FastAPI()
    app.mount("/c", FastAPI())
    flat_routes.include(app.router, _router(("POST", "/c/verify", "verify")))
    with pytest.raises(ValueError):
        flat_routes.busiest_first(app.router, [("POST", "/c/verify")])
    router = _router(("GET", "/files/{rest:path}", "files"), ("POST", "/x", "x"))
    with pytest.raises(ValueError):
        flat_routes.busiest_first(router, [("POST", "/x")])


def test_busiest_first_names_one_route() -> None:
    with pytest.raises(ValueError):
        flat_routes.busiest_first(_router(("GET", "/a", "a")), [("POST", "/a")])
