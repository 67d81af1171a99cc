"""Safe retries on the integration API: ``Idempotency-Key`` replays the stored answer,
refuses a key reused with another request or still running, never stores answers a
retry should redo, seals what it stores, and lets one racing retry do the work."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, text, update

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, idempotency
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import ApiKey, AuditEvent, IdempotencyRecord
from stepup.web.idempotency import worth_keeping
from tests.api.conftest import StartStack
from tests.api.helpers import auth, problem
from tests.api.oob_support import RU_MOBILE
from tests.support.providers import Scripted

USERS = "/api/v1/users"
JANE = {"email": "jane@example.com", "external_id": "client-1"}
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
async def key(runtime: Runtime) -> str:
    _row, token = await apikeys.create(runtime, "portal", "app", Actor(name="test"))
    return token


def h(token: str, idem: str | None = None) -> dict[str, str]:
    return {**auth(token), **({"Idempotency-Key": idem} if idem is not None else {})}


async def create(client: httpx.AsyncClient, token: str, idem: str | None = None,
                 **body: Any) -> httpx.Response:
    return await client.post(USERS, json=body or JANE, headers=h(token, idem))


async def new_user(client: httpx.AsyncClient, token: str) -> str:
    r = await create(client, token)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def enrol_totp(client: httpx.AsyncClient, token: str, uid: str,
                     clock: FrozenClock) -> str:
    r = await client.post(f"{USERS}/{uid}/methods/totp/enrollment", json={},
                          headers=h(token))
    assert r.status_code == 200, r.text
    secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
    r = await client.post(f"{USERS}/{uid}/methods/totp/enrollment/confirm",
                          json={"code": pyotp.TOTP(secret).at(clock.now())}, headers=h(token))
    assert r.status_code == 200, r.text
    clock.advance(30)
    return secret


async def verify(client: httpx.AsyncClient, token: str, uid: str, code: str,
                 idem: str | None, method: str = "totp") -> httpx.Response:
    return await client.post(f"{USERS}/{uid}/verify",
                             json={"method": method, "code": code, "purpose": "login"},
                             headers=h(token, idem))


async def verified_events(rt: Runtime, uid: str) -> int:
    async with rt.db() as db:
        q = select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.event == "code.verified")
        return int((await db.execute(q)).scalar_one())


async def records(rt: Runtime) -> list[IdempotencyRecord]:
    async with rt.db() as db:
        return list((await db.execute(select(IdempotencyRecord))).scalars())


def remaining(r: httpx.Response) -> int:
    return int(r.headers["RateLimit"].split("r=")[1].split(";")[0])


# --- replays ---------------------------------------------------------------------------

async def test_a_retried_verify_gets_the_stored_answer_and_uses_nothing(
        client: httpx.AsyncClient, key: str, clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    code = pyotp.TOTP(secret).at(clock.now())
    first = await verify(client, key, uid, code, "verify-1")
    assert first.status_code == 200 and first.json()["valid"] is True, first.text
    assert REPLAYED not in first.headers

    clock.advance(5)  # a retry a little later: the same answer, time and all
    again = await verify(client, key, uid, code, "verify-1")
    assert again.status_code == 200 and again.headers[REPLAYED] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    # Still authenticated and counted against the key's rate.
    assert remaining(again) == remaining(first) - 1
    assert await verified_events(runtime, uid) == 1
    # Without the key the code is spent, as always; nothing was locked by the replay.
    spent = await verify(client, key, uid, code, None)
    assert spent.json()["code"] in ("code_already_used", "invalid_code"), spent.text
    clock.advance(30)
    fresh = await verify(client, key, uid, pyotp.TOTP(secret).at(clock.now()), "verify-2")
    assert fresh.status_code == 200 and REPLAYED not in fresh.headers, fresh.text
    assert await verified_events(runtime, uid) == 2


async def test_a_replayed_backup_code_spends_no_other_code(
        client: httpx.AsyncClient, key: str) -> None:
    uid = await new_user(client, key)
    r = await client.post(f"{USERS}/{uid}/methods/backup_codes/enrollment", json={},
                          headers=h(key))
    assert r.status_code == 201, r.text
    codes = r.json()["codes"]
    first = await verify(client, key, uid, codes[0], "backup-1", method="backup_codes")
    assert first.status_code == 200, first.text
    again = await verify(client, key, uid, codes[0], "backup-1", method="backup_codes")
    assert again.headers[REPLAYED] == "true" and again.json() == first.json()
    r = await client.get(f"{USERS}/{uid}/methods", headers=h(key))
    backup = next(m for m in r.json()["methods"] if m["type"] == "backup_codes")
    assert backup["remaining"] == len(codes) - 1


async def test_a_replayed_create_returns_the_same_user(client: httpx.AsyncClient,
                                                       key: str) -> None:
    first = await create(client, key, '"create-1"')  # the quoted form is the same key
    assert first.status_code == 201, first.text
    again = await create(client, key, "create-1")
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert (await create(client, key)).status_code == 200  # without a key: the usual


async def test_keys_belong_to_one_api_key(client: httpx.AsyncClient, key: str,
                                          runtime: Runtime) -> None:
    _row, other = await apikeys.create(runtime, "portal-2", "app", Actor(name="test"))
    assert (await create(client, key, "shared")).status_code == 201
    r = await create(client, other, "shared")
    assert r.status_code == 200 and REPLAYED not in r.headers  # ran: the user exists


# --- refusals ----------------------------------------------------------------------------

async def test_a_key_with_another_request_is_refused(client: httpx.AsyncClient,
                                                     key: str) -> None:
    assert (await create(client, key, "k")).status_code == 201
    body = problem(await create(client, key, "k", email="other@example.com"), 422,
                   "idempotency_key_reused")
    assert body["retryable"] is False and body["field"] == "Idempotency-Key"
    r = await client.post(f"{USERS}?x=1", json=JANE, headers=h(key, "k"))
    problem(r, 422, "idempotency_key_reused")
    assert "ratelimit" in r.headers


@pytest.mark.parametrize("value", ["", "a b", "ключ", "x" * 256, '""', '"a"b"'])
async def test_a_malformed_key_is_a_validation_error(client: httpx.AsyncClient, key: str,
                                                     value: str) -> None:
    r = await client.post(USERS, json=JANE,
                          headers={**auth(key), "Idempotency-Key": value.encode()})
    assert problem(r, 422, "validation_error")["field"] == "Idempotency-Key"
    assert "ratelimit" in r.headers


async def test_a_running_first_call_answers_in_use_and_a_dead_one_is_taken_over(
        client: httpx.AsyncClient, key: str, runtime: Runtime, clock: FrozenClock) -> None:
    raw = json.dumps(JANE).encode()
    fp = idempotency.fingerprint("POST", USERS, b"", raw)
    async with runtime.db() as db:
        key_id = (await db.execute(select(ApiKey.id))).scalar_one()
        now = clock.now()
        db.add(IdempotencyRecord(scope=key_id, key="crashed", fingerprint=fp, state="running",
                                 created_at=now, lease_until=now + timedelta(seconds=60),
                                 expires_at=now + timedelta(hours=24)))
        await db.commit()

    async def post() -> httpx.Response:
        return await client.post(USERS, content=raw, headers={
            **h(key, "crashed"), "Content-Type": "application/json"})

    body = problem(await post(), 409, "idempotency_key_in_use")
    assert body["retryable"] is True
    clock.advance(59)
    r = await post()
    problem(r, 409, "idempotency_key_in_use")
    assert r.headers["Retry-After"] == "1" and "ratelimit" in r.headers
    clock.advance(1)  # the lease is over: the first call died, this one runs
    r = await post()
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    assert (await post()).headers[REPLAYED] == "true"


# --- answers that are not kept -------------------------------------------------------------

def test_which_answers_are_kept() -> None:
    def doc(retryable: bool) -> bytes:
        return json.dumps({"code": "x", "retryable": retryable}).encode()

    assert worth_keeping(200, b"{}") and worth_keeping(204, b"")
    assert worth_keeping(400, doc(False)) and worth_keeping(409, doc(False))
    for status in (401, 403, 429, 500, 502, 503):
        assert not worth_keeping(status, doc(False))
    assert not worth_keeping(409, doc(True))  # idempotency_key_in_use, state_changed


async def test_quota_and_auth_failures_are_not_kept(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    row, token = await apikeys.create(runtime, "slow", "app", Actor(name="test"),
                                      rate_per_minute=2)
    assert (await create(client, token, "q", email="q@example.com")).status_code == 201
    replay = await create(client, token, "q", email="q@example.com")
    assert replay.headers[REPLAYED] == "true" and remaining(replay) == 0
    # A replay counts too: past the quota it is refused like any call.
    problem(await create(client, token, "q", email="q@example.com"), 429,
            "api_quota_exceeded")
    problem(await create(client, token, "after-quota"), 429, "api_quota_exceeded")
    clock.advance(60)
    r = await create(client, token, "after-quota")
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text

    await apikeys.revoke(runtime, row.id, Actor(name="test"))
    problem(await create(client, token, "revoked", email="v@example.com"), 401,
            "not_authenticated")
    _scoped_row, scoped = await apikeys.create(runtime, "verify-only", "app",
                                               Actor(name="test"), scopes=["verify"])
    problem(await create(client, scoped, "scoped", email="s@example.com"), 403, "forbidden")
    assert {r.key for r in await records(runtime)} == {"q", "after-quota"}
    async with runtime.db() as db:
        await db.execute(update(ApiKey).values(revoked_at=None, scopes=[]))
        await db.commit()
    for idem in ("revoked", "scoped"):
        r = await create(client, token if idem == "revoked" else scoped, idem,
                         email=f"{idem[0]}@example.com")
        assert r.status_code == 201 and REPLAYED not in r.headers, r.text


# --- storage ---------------------------------------------------------------------------------

async def test_stored_answers_are_sealed(client: httpx.AsyncClient, key: str,
                                         runtime: Runtime) -> None:
    uid = await new_user(client, key)
    url = f"{USERS}/{uid}/methods/totp/enrollment"
    first = await client.post(url, json={}, headers=h(key, "enrol"))
    again = await client.post(url, json={}, headers=h(key, "enrol"))
    assert again.headers[REPLAYED] == "true" and again.json() == first.json()
    secret = first.json()["secret"]
    async with runtime.db() as db:
        (raw,) = (await db.execute(text(
            "SELECT body FROM idempotency_keys WHERE key = 'enrol'"))).one()
    assert secret.encode() not in bytes(raw) and b"otpauth" not in bytes(raw)


async def test_answers_expire_after_24_hours_and_are_pruned(
        client: httpx.AsyncClient, key: str, runtime: Runtime, clock: FrozenClock) -> None:
    assert (await create(client, key, "day")).status_code == 201
    clock.advance(hours=24, seconds=-1)
    assert (await create(client, key, "day")).headers[REPLAYED] == "true"
    clock.advance(1)
    # Expired: the key is free, even for another request.
    r = await create(client, key, "day", email="new@example.com", external_id="client-2")
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    clock.advance(hours=25)
    assert (await create(client, key, "later")).status_code == 200
    assert [r.key for r in await records(runtime)] == ["later"]  # "day" was pruned


# --- races -----------------------------------------------------------------------------------

async def test_racing_retries_run_the_call_once(client: httpx.AsyncClient, key: str,
                                                clock: FrozenClock, runtime: Runtime) -> None:
    uid = await new_user(client, key)
    secret = await enrol_totp(client, key, uid, clock)
    code = pyotp.TOTP(secret).at(clock.now())
    answers = await asyncio.gather(*[verify(client, key, uid, code, "race")
                                     for _ in range(10)])
    ran = [r for r in answers if r.status_code == 200 and REPLAYED not in r.headers]
    assert len(ran) == 1, [(r.status_code, r.text) for r in answers]
    for r in answers:
        if r.headers.get(REPLAYED):
            assert r.status_code == 200 and r.content == ran[0].content
        elif r is not ran[0]:
            problem(r, 409, "idempotency_key_in_use")
    assert await verified_events(runtime, uid) == 1


async def test_a_slow_first_call_answers_in_use_then_replays(start_stack: StartStack) -> None:
    stack = await start_stack()
    _row, token = await apikeys.create(stack.rt, "portal", "app", Actor(name="test"))
    uid = await new_user(stack.client, token)
    url = f"{USERS}/{uid}/methods/sms/enrollment"

    async def enrol(delay: float = 0) -> httpx.Response:
        await asyncio.sleep(delay)
        return await stack.client.post(url, json={"phone": RU_MOBILE}, headers=h(token, "sms"))

    stack.api.script.append(Scripted(503, {"message": "down"}))
    problem(await enrol(), 502, "delivery_failed")  # transient: not kept
    stack.api.script.append(Scripted(201, {"sid": "SMslow"}, delay=1.0))
    first, second = await asyncio.gather(enrol(), enrol(0.3))
    assert first.status_code == 202 and REPLAYED not in first.headers, first.text
    assert problem(second, 409, "idempotency_key_in_use")["retry_after"] == 1
    third = await enrol()
    assert third.status_code == 202 and third.headers[REPLAYED] == "true"
    assert third.json() == first.json() and len(stack.twilio(RU_MOBILE)) == 2
