"""The login step's statements (store/login_flows.py): it reads its flow, the user, the
guards its check needs and the user's methods in one query, which must find what the
separate reads find; it spends the flow and starts the session in one statement on
PostgreSQL, which must start one session per flow."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import login_flows, queries
from tests.api.helpers import (
    enable_backup_codes,
    enable_totp,
    login_token,
    session_for,
    sign_up,
    verify,
    wrong_totp,
)

SCOPES = ("account", "method:totp")


async def _both(runtime: Runtime, token: str) -> tuple[tuple[object, ...], tuple[object, ...]]:
    token_hash = runtime.hasher.token_hash(token)
    async with runtime.db() as db:
        flow, user, guards, methods = await login_flows.get_login_flow_user_guards_and_methods(
            db, token_hash, SCOPES)
        joined = (flow, user, guards, [(m.id, m.type, m.status, m.protects) for m in methods])
    async with runtime.db() as db:
        flow, user = await login_flows.get_login_flow_and_user(db, token_hash)
        alone = (flow, user,
                 await queries.get_guard_states(db, user.id, list(SCOPES)) if user else {},
                 [(m.id, m.type, m.status, m.protects)
                  for m in (await queries.list_methods(db, user.id) if user else [])])
    return joined, alone


def _same(joined: tuple[object, ...], alone: tuple[object, ...]) -> None:
    flow, user = joined[0], joined[1]
    flow_alone, user_alone = alone[0], alone[1]
    assert (getattr(flow, "id", None), getattr(user, "id", None)) == (
        getattr(flow_alone, "id", None), getattr(user_alone, "id", None))
    assert joined[2:] == alone[2:]


async def test_the_one_read_finds_every_method_in_order_and_the_guards(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    clock.advance(60)
    await enable_backup_codes(client, token)
    lt = await login_token(client)
    joined, alone = await _both(runtime, lt)
    _same(joined, alone)
    assert [m[1] for m in joined[3]] == ["totp", "backup_codes"] and joined[2] == {}
    r = await verify(client, lt, "totp", wrong_totp(secret, clock))  # a failure counted
    assert r.status_code == 400, r.text
    joined, alone = await _both(runtime, lt)
    _same(joined, alone)
    assert set(joined[2]) <= set(SCOPES) and joined[2]  # the failure's guard, read


async def test_the_one_read_of_an_unknown_flow_finds_nothing(runtime: Runtime) -> None:
    joined, alone = await _both(runtime, "no such token")
    assert joined == (None, None, {}, []) and alone == (None, None, {}, [])


async def test_a_flow_starts_one_session_only(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, await session_for(client), clock)
    lt = await login_token(client)
    async with runtime.db() as db:
        flow, user = await login_flows.get_login_flow_and_user(
            db, runtime.hasher.token_hash(lt))
        assert flow is not None and user is not None
        started = [await login_flows.consume_and_add_session(
            db, flow.id, clock.now(), id=f"{n}" * 32, token_hash=bytes([n]) * 32,
            user_id=user.id, created_at=clock.now(), last_seen_at=clock.now(),
            expires_at=clock.now(), ip="192.0.2.1", user_agent=None) for n in (1, 2)]
        assert started == [True, False]
        assert await queries.get_session_by_hash(db, bytes([1]) * 32) is not None
        assert await queries.get_session_by_hash(db, bytes([2]) * 32) is None
        await db.commit()
    async with runtime.db() as db:  # spent, as the step's read then sees it
        flow, _user = await login_flows.get_login_flow_and_user(
            db, runtime.hasher.token_hash(lt))
        assert flow is not None and flow.used_at == clock.now()
