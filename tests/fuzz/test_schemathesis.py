"""The JSON API fuzzed from its own ``/openapi.json`` (schemathesis, issue 14 item 9).

Every operation of the published description gets a bounded number of generated requests,
valid and not, with the credentials its security asks for (an end user's session, an app
key, a support key). Whatever it sends: no 5xx, every answer in the declared content type
and matching its declared schema, and every error a problem document with a ``code`` and
``retryable``.

The app runs as in production (its own lifespan, the real clock, SQLite in a temporary
directory), reached in process through schemathesis' ASGI transport. SQLite only: the
PostgreSQL pass skips it, to keep CI time down. Reproducible: derandomized, fixed seed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stepup.config import Settings
from stepup.services import apikeys, apps
from stepup.services.runtime import Actor, Runtime
from stepup.store.db import make_engine
from stepup.store.migrate import upgrade
from stepup.web.app import create_app

pytestmark = pytest.mark.skipif(os.environ.get("STEPUP_TEST_DB") == "postgres",
                                reason="fuzzed on SQLite only (CI time)")

EMAIL = "fuzz@example.com"
PASSWORD = "violet-harbour-7-lanterns"
PIN = "417293"
# Generated requests per operation (hypothesis' fuzzing phase; the schema's examples and
# boundary values come on top). ~20 keeps the whole run at about two minutes on 2 cores.
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Credentials:
    session: str
    spare_session: str  # for POST /logout, which would end ``session`` for the rest
    app_key: str
    support_key: str
    user_id: str  # a user of the app key's app, so user routes reach real logic


async def _seed(s: Settings) -> tuple[str, str]:
    """Schema, an app with a key, and a support key — before the app under test starts."""
    engine = make_engine(s.effective_database_url)
    await upgrade(engine)
    await engine.dispose()
    rt = Runtime.build(s, None)
    try:
        await apps.create(rt, Actor(name="fuzz"), "acme", display_name="Acme Broker")
        _, app_key = await apikeys.create(rt, "fuzz", "app", Actor(name="fuzz"), app="acme",
                                          rate_per_minute=1_000_000)
        _, support_key = await apikeys.create(rt, "fuzz-support", "support",
                                              Actor(name="fuzz"), rate_per_minute=1_000_000)
    finally:
        await rt.engine.dispose()
    return app_key, support_key


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Credentials]]:
    data = tmp_path_factory.mktemp("fuzz")
    s = Settings(data_dir=Path(data), database_url=f"sqlite+aiosqlite:///{data}/stepup.db",
                 issuer="StepUp Fuzz", public_url="http://testserver")
    app_key, support_key = asyncio.run(_seed(s))
    app = create_app(s, migrate_on_start=False)
    from schemathesis.python import asgi

    with asgi.get_client(app) as client:  # starts the app's lifespan, kept for the run
        r = client.post("/api/v1/accounts", json={"email": EMAIL, "password": PASSWORD,
                                                  "pin": PIN})
        assert r.status_code == 201, r.text
        sessions = []
        for _ in range(2):
            r = client.post("/api/v1/login", json={"email": EMAIL, "password": PASSWORD})
            assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
            sessions.append(str(r.json()["session_token"]))
        r = client.post("/api/v1/users", json={"email": "client@example.com",
                                               "external_id": "client-1"},
                        headers={"Authorization": f"Bearer {app_key}"})
        assert r.status_code == 201, r.text
        creds = Credentials(session=sessions[0], spare_session=sessions[1], app_key=app_key,
                            support_key=support_key, user_id=str(r.json()["id"]))
        yield app, creds
    # Its notice and webhook loops would otherwise poll for the rest of the session.
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, Credentials]) -> Any:
    app, _ = fuzz_app
    config = schemathesis.Config.from_dict({
        "seed": 14,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "phases": {"stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis' lazy schema reads and rewrites ``node._nodeid`` (to name each
    # operation in reports), an attribute pytest 9 no longer has: give it one.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _credential(case: Any, creds: Credentials) -> str | None:
    """The bearer token the operation's security asks for (the first it accepts)."""
    for requirement in case.operation.definition.raw.get("security", []):
        for name in requirement:
            if name in ("session", "sessionCookie"):
                return creds.spare_session if case.path.endswith("/logout") else creds.session
            if name == "appKey":
                return creds.app_key
            if name == "supportKey":
                return creds.support_key
    return None


def problem_documents(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is ``application/problem+json`` with ``code`` and ``retryable``."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.split(";")[0].strip() == "application/problem+json", \
        f"{response.status_code} answered as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("retryable"), bool), body
    assert body.get("status") == response.status_code, body
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, problem_documents]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_holds_whatever_it_is_sent(case: Any, fuzz_app: tuple[Any, Credentials]
                                           ) -> None:
    _, creds = fuzz_app
    token = _credential(case, creds)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if "user_id" in (case.path_parameters or {}) and case.method != "DELETE":
        # Mostly a real user of the key's app (not deleted: DELETE keeps the generated id).
        case.path_parameters["user_id"] = creds.user_id
    case.call_and_validate(headers=headers, checks=CHECKS)
