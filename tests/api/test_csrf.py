"""CSRF: API calls that change state and are authenticated only by the session cookie
must carry the X-CSRF-Token header; bearer calls need none."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from stepup.services.runtime import Runtime
from stepup.store.models import Session
from stepup.web.deps import csrf_token_for
from tests.api.helpers import PIN, auth, problem, session_for, sign_up

COOKIE = "stepup_session"  # development: no __Host- prefix (not Secure)
ENROLL = "/api/v1/me/methods/backup_codes/enrollment"


async def session_id(runtime: Runtime, token: str) -> str:
    async with runtime.sessionmaker() as db:
        q = select(Session.id).where(Session.token_hash == runtime.hasher.token_hash(token))
        return str((await db.execute(q)).scalar_one())


async def cookie_client(client: httpx.AsyncClient) -> str:
    await sign_up(client)
    token = await session_for(client)
    client.cookies.set(COOKIE, token)
    return token


async def test_cookie_reads_need_no_token(client: httpx.AsyncClient) -> None:
    await cookie_client(client)
    r = await client.get("/api/v1/me")
    assert r.status_code == 200 and r.json()["email"] == "jane@example.com"


async def test_cookie_writes_without_the_token_are_forbidden(client: httpx.AsyncClient,
                                                             runtime: Runtime) -> None:
    token = await cookie_client(client)
    other = await session_for(client)  # another session of the same user
    wrong = [None, "", "0" * 64, csrf_token_for(runtime, await session_id(runtime, other)),
             "é" * 64]
    for value in wrong:
        headers = {} if value is None else {"X-CSRF-Token": value.encode("latin-1")}
        r = await client.post(ENROLL, json={"pin": PIN}, headers=headers)
        problem(r, 403, "forbidden")
        problem(await client.post("/api/v1/logout", headers=headers), 403, "forbidden")
    # Nothing happened: no codes, and the session still works.
    r = await client.get("/api/v1/me/methods")
    backup = next(m for m in r.json()["methods"] if m["type"] == "backup_codes")
    assert backup["enabled"] is False
    assert (await client.get("/api/v1/me", headers=auth(token))).status_code == 200


async def test_cookie_writes_with_the_right_token_work(client: httpx.AsyncClient,
                                                       runtime: Runtime) -> None:
    token = await cookie_client(client)
    csrf = {"X-CSRF-Token": csrf_token_for(runtime, await session_id(runtime, token))}
    r = await client.post(ENROLL, json={"pin": PIN}, headers=csrf)
    assert r.status_code == 201, r.text
    assert (await client.post("/api/v1/logout", headers=csrf)).status_code == 204
    problem(await client.get("/api/v1/me"), 401, "not_authenticated")


async def test_bearer_writes_need_no_csrf_token(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 201, r.text
    assert (await client.post("/api/v1/logout", headers=auth(token))).status_code == 204
