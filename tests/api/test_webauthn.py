"""Passkeys (WebAuthn) through the API, answered by a software authenticator that signs
for real: enrolment with the PIN, login, a withdrawal, switches and Disable, and the
ways an answer is refused (replayed, for another purpose or site, another key, a
cloned authenticator's counter)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import Passkey
from tests.api.helpers import (
    PIN,
    auth,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    verify,
)
from tests.api.ops_support import challenge as op_challenge
from tests.api.ops_support import confirm, past_pin, protect
from tests.support.passkey import SoftPasskey, unb64url

METHODS = "/api/v1/me/methods/webauthn"


async def enrol(client: httpx.AsyncClient, token: str, passkey: SoftPasskey) -> None:
    r = await client.post(f"{METHODS}/enrollment", json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 200, r.text
    options = r.json()["options"]
    assert options["rp"]["id"] == "testserver"
    assert options["attestation"] == "none"
    r = await client.post(f"{METHODS}/enrollment/confirm",
                          json={"code": passkey.create(options)}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True


async def manage_options(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.post(f"{METHODS}/challenge", headers=auth(token))
    assert r.status_code == 202, r.text
    return dict(r.json()["options"])


async def login_options(client: httpx.AsyncClient, lt: str) -> dict[str, Any]:
    r = await client.post("/api/v1/login/challenge", json={"login_token": lt,
                                                           "method": "webauthn"})
    assert r.status_code == 202, r.text
    assert r.json()["sent_to"] == "passkey" and r.json()["method"] == "webauthn"
    return dict(r.json()["options"])


async def passkey_user(client: httpx.AsyncClient) -> tuple[str, SoftPasskey]:
    await sign_up(client)
    token = await session_for(client)
    passkey = SoftPasskey()
    await enrol(client, token, passkey)
    return token, passkey


async def test_a_passkey_is_enrolled_with_the_pin_and_protects_login(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post(f"{METHODS}/enrollment", json={"pin": "000000"}, headers=auth(token))
    problem(r, 400, "pin_invalid")
    passkey = SoftPasskey()
    await enrol(client, token, passkey)
    view = await method_view(client, token, "webauthn")
    assert view["enabled"] and view["protects"] == {"login": True, "withdrawal": False}
    # At rest, the credential is sealed with the key ring: neither its id nor its
    # public key is readable in the table.
    async with runtime.db() as db:
        row = (await db.execute(select(Passkey))).scalar_one()
    assert passkey.credential_id not in row.secret_ct
    assert passkey._cose_key()[-32:] not in row.secret_ct


async def test_login_with_a_passkey_and_no_replay(client: httpx.AsyncClient) -> None:
    _, passkey = await passkey_user(client)
    lt = await login_token(client)
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": "violet-harbour-7-lanterns"})
    assert {"type": "webauthn"} in r.json()["methods"]
    options = await login_options(client, lt)
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [passkey.credential_id]
    assertion = passkey.get(options)
    r = await verify(client, lt, "webauthn", assertion)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated"
    # The same answer again, on a new login: its challenge is spent, and the answer is
    # told apart from a wrong one (a retry, not counted toward the lock).
    problem(await verify(client, await login_token(client), "webauthn", assertion),
            409, "code_already_used")


async def test_answers_that_are_refused(client: httpx.AsyncClient) -> None:
    _, passkey = await passkey_user(client)
    lt = await login_token(client)
    # Not a passkey answer at all.
    problem(await verify(client, lt, "webauthn", "123456"), 400, "invalid_code")
    # Made on another site (a phishing page relaying the challenge).
    options = await login_options(client, lt)
    phished = passkey.get(options, origin="https://stepup.example.net")
    body = problem(await verify(client, lt, "webauthn", phished), 400, "invalid_code")
    assert "another site" in body["detail"]
    # Signed by another authenticator that claims this credential id.
    impostor = SoftPasskey(credential_id=passkey.credential_id)
    problem(await verify(client, lt, "webauthn", impostor.get(await login_options(client, lt))),
            400, "invalid_code")
    # A counter that went backwards: a cloned authenticator.
    good = passkey.get(await login_options(client, lt))
    assert (await verify(client, lt, "webauthn", good)).status_code == 200
    lt = await login_token(client)
    clone = passkey.get(await login_options(client, lt), count=passkey.sign_count - 1)
    problem(await verify(client, lt, "webauthn", clone), 400, "invalid_code")
    # Five failures in a row lock the method, as for any code; then even a good answer
    # waits.
    options = await login_options(client, lt)
    for _ in range(3):
        problem(await verify(client, lt, "webauthn", "{}"), 400, "invalid_code")
    body = problem(await verify(client, lt, "webauthn", "{}"), 423, "method_locked")
    assert body["retry_after"] == 60
    problem(await verify(client, lt, "webauthn", passkey.get(options)), 423, "method_locked")


async def test_synced_passkeys_that_never_count_are_accepted(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    passkey = SoftPasskey(counting=False)
    await enrol(client, token, passkey)
    for _ in range(3):
        lt = await login_token(client)
        r = await verify(client, lt, "webauthn", passkey.get(await login_options(client, lt)))
        assert r.status_code == 200, r.text


async def test_an_answer_serves_only_the_purpose_it_was_asked_for(
        client: httpx.AsyncClient) -> None:
    token, passkey = await passkey_user(client)
    await protect(client, token, "webauthn", passkey.get(await manage_options(client, token)))
    op_id = await past_pin(client, token)
    # A login challenge's answer cannot confirm the withdrawal.
    login_answer = passkey.get(await login_options(client, await login_token(client)))
    problem(await confirm(client, token, op_id, "webauthn", login_answer), 400, "invalid_code")
    r = await op_challenge(client, token, op_id, "webauthn")
    assert r.status_code == 202, r.text
    r = await confirm(client, token, op_id, "webauthn", passkey.get(r.json()["options"]))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["receipt"]


async def test_switches_and_disable_need_the_passkey(client: httpx.AsyncClient,
                                                   clock: FrozenClock) -> None:
    token, passkey = await passkey_user(client)
    r = await client.post(f"{METHODS}/disable", json={"code": "123456"}, headers=auth(token))
    problem(r, 400, "invalid_code")
    r = await client.post(f"{METHODS}/disable",
                          json={"code": passkey.get(await manage_options(client, token))},
                          headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False
    assert (await client.post("/api/v1/login", json={
        "email": "jane@example.com", "password": "violet-harbour-7-lanterns"})
    ).json()["status"] == "authenticated"
    # Enabled again, with a new key: the old one is no longer accepted.
    fresh = SoftPasskey()
    await enrol(client, token, fresh)
    lt = await login_token(client)
    options = await login_options(client, lt)
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [fresh.credential_id]
    problem(await verify(client, lt, "webauthn", passkey.get({**options, "allowCredentials": []})),
            400, "invalid_code")


async def test_an_enrolment_answer_must_answer_its_own_request(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post(f"{METHODS}/enrollment", json={"pin": PIN}, headers=auth(token))
    options = r.json()["options"]
    forged = {**options, "challenge": "A" * 43}
    r = await client.post(f"{METHODS}/enrollment/confirm",
                          json={"code": SoftPasskey().create(forged)}, headers=auth(token))
    problem(r, 400, "invalid_code")
    r = await client.post(f"{METHODS}/enrollment/confirm",
                          json={"code": SoftPasskey().create(options, origin="http://evil")},
                          headers=auth(token))
    problem(r, 400, "invalid_code")
    assert (await method_view(client, token, "webauthn"))["enabled"] is False
    assert json.loads(SoftPasskey().create(options))["type"] == "public-key"


async def test_a_portal_uses_passkeys_headless(client: httpx.AsyncClient,
                                               runtime: Runtime) -> None:
    # A portal with its own pages: it enrols the passkey on the user's behalf, asks for
    # a login challenge, and has StepUp check the assertion.
    from stepup.services import apikeys
    from stepup.services.runtime import Actor

    _, key = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    h = {"Authorization": f"Bearer {key}"}
    r = await client.post("/api/v1/users", json={"email": "jane@example.com",
                                                 "external_id": "client-1"}, headers=h)
    uid = r.json()["id"]
    passkey = SoftPasskey()
    r = await client.post(f"/api/v1/users/{uid}/methods/webauthn/enrollment", json={},
                          headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/users/{uid}/methods/webauthn/enrollment/confirm",
                          json={"code": passkey.create(r.json()["options"])}, headers=h)
    assert r.status_code == 200 and r.json()["enabled"], r.text
    r = await client.post(f"/api/v1/users/{uid}/challenge", json={"method": "webauthn"},
                          headers=h)
    assert r.status_code == 202, r.text
    assertion = passkey.get(r.json()["options"])
    r = await client.post(f"/api/v1/users/{uid}/verify",
                          json={"method": "webauthn", "code": assertion}, headers=h)
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    r = await client.post(f"/api/v1/users/{uid}/verify",
                          json={"method": "webauthn", "code": assertion}, headers=h)
    problem(r, 409, "code_already_used")  # the portal's retry

    # A second passkey on the user's behalf (no PIN: the portal vouches), then the first
    # removed with the user's answer from the second.
    base = f"/api/v1/users/{uid}/methods/webauthn"
    second = SoftPasskey()
    r = await client.post(f"{base}/passkeys", json={}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(f"{base}/passkeys/confirm",
                          json={"code": second.create(r.json()["options"])}, headers=h)
    assert r.status_code == 200, r.text
    first_id = r.json()["passkeys"][0]["id"]
    r = await client.post(f"{base}/challenge", headers=h)
    r = await client.post(f"{base}/passkeys/{first_id}/remove",
                          json={"code": second.get(r.json()["options"])}, headers=h)
    assert r.status_code == 200 and len(r.json()["passkeys"]) == 1, r.text
    r = await client.post(f"/api/v1/users/{uid}/challenge", json={"method": "webauthn"},
                          headers=h)
    options = r.json()["options"]
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [second.credential_id]
    r = await client.post(f"/api/v1/users/{uid}/verify",
                          json={"method": "webauthn", "code": second.get(options)}, headers=h)
    assert r.status_code == 200 and r.json()["valid"] is True, r.text


async def test_passkey_requests_are_capped_per_hour(client: httpx.AsyncClient) -> None:
    token, _ = await passkey_user(client)  # its enrolment was the hour's first request
    for _ in range(59):
        await manage_options(client, token)
    r = await client.post(f"{METHODS}/challenge", headers=auth(token))
    body = problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) == body["retry_after"] == 3601


def _with_response(good: dict[str, Any], **fields: object) -> dict[str, Any]:
    return {**good, "response": {**good["response"], **fields}}


BROKEN: list[Callable[[dict[str, Any]], object]] = [
    lambda g: [], lambda g: "x", lambda g: 7, lambda g: {}, lambda g: {"response": "x"},
    lambda g: {"response": {"clientDataJSON": "!!"}},
    lambda g: {**g, "rawId": 5}, lambda g: {**g, "rawId": "***"}, lambda g: {**g, "rawId": ""},
    lambda g: _with_response(g, authenticatorData="AAAA"),
    lambda g: _with_response(g, signature=12),
    lambda g: _with_response(g, signature="AAAA"),
    lambda g: _with_response(g, clientDataJSON="e30"),  # "{}"
    lambda g: {**g, "response": None},
]


async def test_malformed_answers_get_a_problem_document_never_a_500(
        client: httpx.AsyncClient) -> None:
    _, passkey = await passkey_user(client)
    for make in BROKEN:
        lt = await login_token(client)
        # Built on a good answer to this request's challenge, so the checks past the
        # challenge run too.
        good = json.loads(passkey.get(await login_options(client, lt)))
        r = await verify(client, lt, "webauthn", json.dumps(make(good)))
        problem(r, 400, "invalid_code")
        # Still usable: a good answer to a fresh request (which also resets the count of
        # failures, so no lock comes in the way of the next case).
        r = await verify(client, lt, "webauthn", passkey.get(await login_options(client, lt)))
        assert r.status_code == 200, r.text


async def test_several_passkeys_each_serve_and_one_is_removed(
        client: httpx.AsyncClient) -> None:
    token, first = await passkey_user(client)
    r = await client.post(f"{METHODS}/passkeys", json={"pin": "000000"}, headers=auth(token))
    problem(r, 400, "pin_invalid")
    r = await client.post(f"{METHODS}/passkeys", json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 200, r.text
    options = r.json()["options"]
    # The browser is told which authenticator already holds one.
    assert [unb64url(c["id"]) for c in options["excludeCredentials"]] == [first.credential_id]
    second = SoftPasskey()
    r = await client.post(f"{METHODS}/passkeys/confirm",
                          json={"code": second.create(options)}, headers=auth(token))
    assert r.status_code == 200, r.text
    listed = r.json()["passkeys"]
    assert [p["name"] for p in listed] == ["Passkey 1", "Passkey 2"]
    # The same authenticator again is refused, even if a browser let it through.
    r = await client.post(f"{METHODS}/passkeys", json={"pin": PIN}, headers=auth(token))
    r = await client.post(f"{METHODS}/passkeys/confirm",
                          json={"code": first.create(r.json()["options"])}, headers=auth(token))
    problem(r, 409, "conflict")

    for passkey in (first, second):
        lt = await login_token(client)
        options = await login_options(client, lt)
        assert {unb64url(c["id"]) for c in options["allowCredentials"]} == {
            first.credential_id, second.credential_id}
        assert (await verify(client, lt, "webauthn", passkey.get(options))).status_code == 200

    # Remove the first, with an answer from the second.
    r = await client.post(f"{METHODS}/passkeys/{listed[0]['id']}/remove",
                          json={"code": second.get(await manage_options(client, token))},
                          headers=auth(token))
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["passkeys"]] == ["Passkey 2"]
    lt = await login_token(client)
    problem(await verify(client, lt, "webauthn", first.get(
        {**await login_options(client, lt), "allowCredentials": []})), 400, "invalid_code")
    r = await client.post(f"{METHODS}/passkeys/nothing-here/remove",
                          json={"code": "{}"}, headers=auth(token))
    problem(r, 404, "not_found")

    # Removing the last one disables passkeys: the password alone logs in again.
    r = await client.post(f"{METHODS}/passkeys/{listed[1]['id']}/remove",
                          json={"code": second.get(await manage_options(client, token))},
                          headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and "passkeys" not in r.json()
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": "violet-harbour-7-lanterns"})
    assert r.json()["status"] == "authenticated"


async def test_adding_a_passkey_needs_passkeys_enabled(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post(f"{METHODS}/passkeys", json={"pin": PIN}, headers=auth(token))
    problem(r, 409, "method_not_enabled")


async def test_passkeys_are_named_and_renamed(client: httpx.AsyncClient,
                                              runtime: Runtime) -> None:
    token, _ = await passkey_user(client)
    r = await client.post(f"{METHODS}/passkeys", json={"pin": PIN}, headers=auth(token))
    r = await client.post(f"{METHODS}/passkeys/confirm", headers=auth(token), json={
        "code": SoftPasskey().create(r.json()["options"]), "name": "  Work   laptop "})
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["passkeys"]] == ["Passkey 1", "Work laptop"]
    first = r.json()["passkeys"][0]["id"]
    for bad in ("", "   ", "x" * 61, "bad\x07name"):
        r = await client.patch(f"{METHODS}/passkeys/{first}", json={"name": bad},
                               headers=auth(token))
        assert problem(r, 422, "validation_error")["field"] == "name", bad
    r = await client.patch(f"{METHODS}/passkeys/{first}", json={"name": "YubiKey 5"},
                           headers=auth(token))
    assert r.status_code == 200, r.text
    assert {p["name"] for p in r.json()["passkeys"]} == {"YubiKey 5", "Work laptop"}
    problem(await client.patch(f"{METHODS}/passkeys/nothing", json={"name": "x"},
                               headers=auth(token)), 404, "not_found")
    # Someone else's passkey cannot be renamed through this account.
    await sign_up(client, "other@example.com")
    other = await session_for(client, "other@example.com")
    problem(await client.patch(f"{METHODS}/passkeys/{first}", json={"name": "mine"},
                               headers=auth(other)), 404, "not_found")
    async with runtime.db() as db:
        from stepup.store.models import AuditEvent
        renamed = (await db.execute(select(AuditEvent.data).where(
            AuditEvent.event == "passkey.renamed"))).scalars().all()
    assert [d["name"] for d in renamed] == ["YubiKey 5"]
