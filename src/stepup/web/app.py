"""The app factory: one FastAPI app serving the JSON API, the portal and health checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import text

from stepup import __version__, metrics
from stepup.config import Settings
from stepup.domain.clock import Clock
from stepup.services import notifications, recovery, rekey, webhooks
from stepup.services.runtime import Runtime
from stepup.store import migrate, sqlite_checkpoint
from stepup.store.db import is_sqlite
from stepup.web import direct, flat_routes, openapi, problems
from stepup.web.admin import routes as admin
from stepup.web.api import (
    accounts,
    dev,
    devices,
    events,
    hooks,
    login,
    me_security,
    methods,
    operations,
    user_lifecycle,
    user_recovery,
    users,
)
from stepup.web.api import webhooks as webhook_api
from stepup.web.idempotency import Idempotency
from stepup.web.middleware import Answers, BodyLimit, UnexpectedErrors
from stepup.web.portal import dev as portal_dev
from stepup.web.portal import routes as portal

log = logging.getLogger("stepup")
STATIC = Path(__file__).parent / "static"
# Tried before any other route, in this order (each route passed costs a check, see
# flat_routes.py): the integration's verify and challenge, the hosted login's second step
# and its code, the portal's second-factor page and form (the page stays before the form:
# another method is refused with the Allow header of the first route of the path).
BUSIEST = (("POST", "/api/v1/users/{user_id}/verify"), ("POST", "/api/v1/login/verify"),
           ("POST", "/api/v1/users/{user_id}/challenge"), ("POST", "/api/v1/login/challenge"),
           ("GET", "/login/second-factor"), ("POST", "/login/second-factor"))


async def prepare_schema(rt: Runtime) -> None:
    """The embedded default upgrades itself; a server database must be migrated first."""
    if is_sqlite(rt.settings.effective_database_url):
        await migrate.upgrade(rt.engine)
    elif not await migrate.is_current(rt.engine):
        raise RuntimeError("the database schema is not current: run `stepup migrate`")


def _telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry spans and metrics: off unless the operator asks for
    them (``FASTAPI_OTEL_AUTO_CONFIGURE=true`` with an OpenTelemetry SDK installed).
    Left on, FastAPI asks the three global providers on every request whether one was
    set (~5 µs a request); StepUp's metrics are Prometheus's (``/metrics``)."""
    if os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return {}
    return {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               runtime: Runtime | None = None, migrate_on_start: bool = True) -> FastAPI:
    settings = settings or Settings.load()
    settings.check_production()
    rt = runtime or Runtime.build(settings, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await prepare_schema(rt)
        await rekey.apply_retirements(rt)  # retired key ids decrypt nothing here
        # SQLite: the write-ahead log copied back on a thread, not by the commits.
        checkpointer = await sqlite_checkpoint.in_background(rt.engine)
        checkpoints = asyncio.create_task(checkpointer.run_forever()) if checkpointer \
            else None
        # Always: any app may get a webhook URL while this runs, and the same task moves
        # operations past their expiry to "expired" (operation.expired); idle, it costs
        # one small query per poll.
        sender = asyncio.create_task(webhooks.run_forever(rt))
        # Security notices are always on (operators turn off kinds, not the sender).
        notices = asyncio.create_task(notifications.run_forever(rt))
        # Approved recovery requests whose waiting period is over reset their accounts.
        resets = asyncio.create_task(recovery.run_forever(rt))
        yield
        if checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        notices.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notices
        resets.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resets
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await rt.engine.dispose()

    app = FastAPI(
        title="StepUp API", version=__version__, lifespan=lifespan, telemetry=_telemetry(),
        description="Multi-factor authentication for client portals. Errors are RFC 9457 "
                    "problem documents (`application/problem+json`, schema `Problem`).",
        responses={400: {"model": problems.Problem, "description": "Problem document"},
                   422: {"model": problems.Problem, "description": "Validation problem"}},
    )
    app.state.runtime = rt
    problems.install(app)

    # The routers' routes are copied into the app's own (flat_routes.include: FastAPI
    # 0.165 would keep each router as a branch, walked per request at several times the
    # cost of a route). This is the OpenAPI document's order, and the order in which a
    # request tries the routes, after BUSIEST.
    for router in (accounts.router, login.router, users.router, user_lifecycle.router,
                   user_recovery.router, methods.router, operations.router, devices.router,
                   events.router, events.admin_router, webhook_api.router,
                   me_security.router):
        flat_routes.include(app.router, router, prefix="/api/v1")
    flat_routes.include(app.router, operations.wellknown)
    flat_routes.include(app.router, hooks.router)  # providers' delivery reports
    if not settings.is_production:
        # Never in production: the outbox holds live codes.
        flat_routes.include(app.router, dev.router, prefix="/api/v1")
        flat_routes.include(app.router, portal_dev.router)
    flat_routes.include(app.router, portal.router)
    flat_routes.include(app.router, admin.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            async with asyncio.timeout(2):
                async with rt.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready", never a 500
            return problems.problem_response("service_unavailable", "Not ready",
                                             "The database is not reachable.", retry_after=5)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    # The document lists the routes as declared; requests try the busiest first.
    openapi.install(app, routes=list(app.routes))
    flat_routes.busiest_first(app.router, BUSIEST)
    # The two hottest routes solve their arguments by hand (web/direct.py).
    direct.answer(app.router, "POST", "/api/v1/users/{user_id}/verify", users.verify_directly)
    direct.answer(app.router, "POST", "/api/v1/login/verify", login.login_verify_directly)

    # Innermost first: a replayed answer still gets the key's RateLimit headers, and
    # every answer its security headers.
    app.add_middleware(Idempotency)
    app.add_middleware(Answers, hsts=settings.secure_cookies)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Outermost too: an error raised in a middleware (Idempotency's own database calls)
    # is answered as a problem document and keeps the connection, like a route's.
    app.add_middleware(UnexpectedErrors)
    return app
