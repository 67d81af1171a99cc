"""The OpenAPI description is one a client generator can use: it validates, every
operation says who may call it and every problem it can answer (with the Problem
schema), every code a domain error carries is declared somewhere, and the examples of
the integration calls have the shape of the real answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from openapi_spec_validator import validate

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import DomainError
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.web.openapi_errors import OUTSIDE_API, ROUTE_CODES
from stepup.web.openapi_examples import EXAMPLES
from stepup.web.problems import PROBLEM_JSON, STATUS_BY_CODE
from tests.api.helpers import PASSWORD, problem
from tests.api.ops_support import last_code

PROBLEM_REF = "#/components/schemas/Problem"
USER = "/api/v1/users/{user_id}"


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items()
            for method, op in item.items() if isinstance(op, dict)]


def declared_codes(op: dict[str, Any]) -> set[str]:
    return {c for status, r in op["responses"].items() if status[0] in "45"
            for c in r["x-codes"]}


def domain_codes() -> set[str]:
    seen, stack = set(), list(DomainError.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        seen.add(cls.code)
    return seen


async def test_the_document_validates(doc: dict[str, Any]) -> None:
    validate(doc)
    schemes = doc["components"]["securitySchemes"]
    assert {"session", "sessionCookie", "appKey", "supportKey"} <= set(schemes)
    assert schemes["session"] == {**schemes["session"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert schemes["sessionCookie"]["name"] == "stepup_session"  # not secure: development
    assert "__Host-stepup_session" in schemes["sessionCookie"]["description"]
    assert "sk_app_" in schemes["appKey"]["description"]
    assert "sk_support_" in schemes["supportKey"]["description"]


async def test_every_operation_declares_security_and_its_problems(doc: dict[str, Any]
                                                                  ) -> None:
    api = [(m, p, op) for m, p, op in operations(doc) if p.startswith("/api/v1/")]
    assert len(api) > 40
    for method, path, op in operations(doc):
        where = f"{method} {path}"
        if path.startswith("/api/v1/"):
            assert "security" in op, where
            assert any(s.startswith("4") for s in op["responses"]), where
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            media = response["content"]
            assert list(media) == [PROBLEM_JSON], where
            assert media[PROBLEM_JSON]["schema"] == {"$ref": PROBLEM_REF}, where
            codes = response["x-codes"]
            assert codes, (where, status)
            assert all(STATUS_BY_CODE[c] == int(status) for c in codes), (where, status)
            for code in codes:
                assert f"`{code}`" in response["description"], (where, code)
            sample = media[PROBLEM_JSON]["example"]
            assert sample["code"] in codes and sample["status"] == int(status), where
        assert {"service_unavailable", "internal_error"} <= declared_codes(op), where


async def test_every_domain_code_is_declared(doc: dict[str, Any]) -> None:
    declared = set().union(*(declared_codes(op) for _m, _p, op in operations(doc)))
    assert domain_codes() - set(OUTSIDE_API) <= declared, \
        domain_codes() - set(OUTSIDE_API) - declared
    assert not declared & set(OUTSIDE_API)


async def test_the_table_names_real_routes_and_codes(doc: dict[str, Any]) -> None:
    known = {(m, p) for m, p, _op in operations(doc)}
    assert set(ROUTE_CODES) <= known, set(ROUTE_CODES) - known
    assert set(EXAMPLES) <= known, set(EXAMPLES) - known
    for codes in ROUTE_CODES.values():
        assert set(codes) <= set(STATUS_BY_CODE), codes


async def test_security_follows_the_dependencies(doc: dict[str, Any]) -> None:
    def security(method: str, path: str) -> Any:
        return doc["paths"][path][method]["security"]

    session = [{"session": []}, {"sessionCookie": []}]
    assert security("post", "/api/v1/accounts") == []
    assert security("post", "/api/v1/login/verify") == []
    assert security("get", "/.well-known/jwks.json") == []
    assert security("get", "/api/v1/me") == session
    assert security("post", "/api/v1/me/operations/{operation_id}/confirm") == session
    assert security("post", f"{USER}/verify") == [{"appKey": ["verify"]}]
    assert security("get", "/api/v1/users") == [{"appKey": ["users"]}]
    assert security("get", "/api/v1/admin/events") == [{"supportKey": []}]
    # Generic problems follow the security: a scoped key's 403, its quota, a user id.
    assert {"forbidden", "api_quota_exceeded", "not_found", "not_authenticated"} <= \
        declared_codes(doc["paths"][f"{USER}/events"]["get"])
    assert "forbidden" not in declared_codes(doc["paths"]["/api/v1/me"]["get"])  # no CSRF
    assert "not_authenticated" not in declared_codes(doc["paths"]["/api/v1/accounts"]["post"])
    if "/api/v1/webhooks/test" in doc["paths"]:  # routes added later get theirs too
        assert security("post", "/api/v1/webhooks/test") == [{"appKey": ["users"]}]


async def test_the_integration_verify_lists_its_codes(doc: dict[str, Any]) -> None:
    verify = doc["paths"][f"{USER}/verify"]["post"]
    codes = declared_codes(verify)
    assert {"code_already_used", "method_not_allowed_for_purpose", "invalid_code",
            "code_expired", "method_locked", "account_locked", "method_not_enabled",
            "idempotency_key_in_use", "idempotency_key_reused"} <= codes
    conflict = verify["responses"]["409"]
    assert {"code_already_used", "method_not_allowed_for_purpose"} <= set(conflict["x-codes"])
    assert "Retry-After" in verify["responses"]["423"]["headers"]
    assert "RateLimit" in verify["responses"]["423"]["headers"]


async def test_a_route_declared_public_answers_without_a_key(
        client: httpx.AsyncClient, doc: dict[str, Any]) -> None:
    assert doc["paths"]["/api/v1/accounts"]["post"]["security"] == []
    r = await client.post("/api/v1/accounts", json={"email": "jane@example.com",
                                                    "password": PASSWORD, "pin": "417293"})
    assert r.status_code == 201, r.text
    assert doc["paths"]["/.well-known/jwks.json"]["get"]["security"] == []
    assert (await client.get("/.well-known/jwks.json")).status_code == 200
    # ... and one that asks for a key refuses without one, as it declares.
    assert "not_authenticated" in declared_codes(doc["paths"]["/api/v1/users"]["get"])
    problem(await client.get("/api/v1/users"), 401, "not_authenticated")


# --- the examples are true to the real answers ----------------------------------------------


def same_shape(example: Any, real: Any, where: str) -> None:
    """Same keys (free-form maps aside), same JSON types; null matches anything."""
    if example is None or real is None:
        return
    if isinstance(example, dict):
        assert isinstance(real, dict), (where, real)
        if where.rsplit(".", 1)[-1] in ("details", "options"):
            return
        assert set(example) == set(real), (where, sorted(example), sorted(real))
        for key in example:
            same_shape(example[key], real[key], f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(real, list), (where, real)
        if example and real:
            same_shape(example[0], real[0], f"{where}[0]")
    else:
        assert type(example) is type(real), (where, example, real)


class Portal:
    """Calls an integration route with the example's request body and checks the
    answer against the example of its status."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.key, self.user_id = client, key, ""

    async def call(self, method: str, template: str, status: int, *,
                   body: Any = "example", check: bool = True, **names: str
                   ) -> dict[str, Any]:
        examples = EXAMPLES[(method, template)]
        if body == "example":
            body = examples.get("request")
        path = template.replace("{user_id}", self.user_id)
        for name, value in names.items():
            path = path.replace(f"{{{name}}}", value)
        r = await self.client.request(method, path, json=body,
                                      headers={"Authorization": f"Bearer {self.key}"})
        assert r.status_code == status, (method, path, r.text)
        real = dict(r.json())
        if check:
            same_shape(examples[status], real, f"{method} {template} {status}")
        return real


async def test_the_integration_examples_have_the_real_shapes(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    _row, key = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    portal = Portal(client, key)
    created = await portal.call("POST", "/api/v1/users", 201)
    portal.user_id = created["id"]
    await portal.call("POST", "/api/v1/users", 200)
    # SMS first: the first method protects login, so it can send a login code.
    sms_to = EXAMPLES[("POST", f"{USER}/methods/{{method_type}}/enrollment")]["request"]
    await portal.call("POST", f"{USER}/methods/{{method_type}}/enrollment", 202,
                      method_type="sms")
    code = await last_code(client, sms_to["phone"].replace(" ", ""), "sms")
    await portal.call("POST", f"{USER}/methods/{{method_type}}/enrollment/confirm", 200,
                      body={"code": code}, method_type="sms", check=False)  # totp's
    sent = await portal.call("POST", f"{USER}/challenge", 202)
    shown = EXAMPLES[("POST", f"{USER}/challenge")][202]
    assert sent == shown, (sent, shown)  # the mask, the lifetimes: as the example says
    started = await portal.call("POST", f"{USER}/methods/{{method_type}}/enrollment", 200,
                                body={}, method_type="totp")
    totp = pyotp.TOTP(parse_qs(urlparse(started["otpauth_uri"]).query)["secret"][0])
    await portal.call("POST", f"{USER}/methods/{{method_type}}/enrollment/confirm", 200,
                      body={"code": totp.at(clock.now())}, method_type="totp")
    clock.advance(30)
    await portal.call("PATCH", f"{USER}/methods/{{method_type}}", 200,
                      body={"protects": {"login": True, "withdrawal": True},
                            "code": totp.at(clock.now())}, method_type="totp")
    clock.advance(30)
    await portal.call("POST", f"{USER}/verify", 200,
                      body={"method": "totp", "code": totp.at(clock.now())})
    clock.advance(30)
    codes = await portal.call("POST", f"{USER}/methods/{{method_type}}/enrollment", 201,
                              body={}, method_type="backup_codes")
    await portal.call("POST", f"{USER}/methods/backup_codes/regenerate", 201,
                      body={"code": codes["codes"][0]})
    await portal.call("GET", f"{USER}/methods", 200)
    await portal.call("POST", f"{USER}/methods/{{method_type}}/challenge", 202, body=None,
                      method_type="sms")
    # An operation: the details come back canonical, exactly as the example shows them.
    op = await portal.call("POST", f"{USER}/operations", 201)
    shown = EXAMPLES[("POST", f"{USER}/operations")][201]
    assert (op["details"], op["summary"]) == (shown["details"], shown["summary"])
    await portal.call("POST", f"{USER}/operations/{{operation_id}}/pin", 200,
                      operation_id=op["id"])
    await portal.call("GET", f"{USER}/operations/{{operation_id}}", 200,
                      operation_id=op["id"])
    # The user's lifecycle.
    await portal.call("GET", "/api/v1/users", 200)
    await portal.call("GET", USER, 200)
    await portal.call("GET", f"{USER}/events", 200)
    await portal.call("POST", f"{USER}/unlock", 200)
    await portal.call("POST", f"{USER}/recovery", 201)
    await portal.call("GET", f"{USER}/recovery", 200)
    await portal.call("PATCH", USER, 200)
    await portal.call("POST", f"{USER}/methods/{{method_type}}/disable", 200,
                      body={"code": totp.at(clock.now())}, method_type="totp")
