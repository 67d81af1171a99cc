"""The user and method a verification reads as Core and makes persistent
(store/loaded.py) must be what the ORM would have loaded: the same values and types,
changes written when the session commits, and one object per identity in a session."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import inspect, select
from sqlalchemy.orm.util import identity_key

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import login_flows, queries
from stepup.store.models import LoginFlow, Method, User
from tests.api.test_key_count_joined import user_and_checker


def _columns(obj: object) -> dict[str, object]:
    table = type(obj).__table__  # type: ignore[attr-defined]
    return {c.key: getattr(obj, c.key) for c in table.columns}


async def test_the_user_and_method_are_the_orms_objects_with_the_same_values(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        user, method = await queries.get_user_and_method(db, uid, "totp")
        assert isinstance(user, User) and isinstance(method, Method)
        fast = (_columns(user), _columns(method))
    async with runtime.db() as db:
        orm_user = (await db.execute(select(User).where(User.id == uid))).scalar_one()
        orm_method = (await db.execute(select(Method).where(
            Method.user_id == uid, Method.type == "totp"))).scalar_one()
        slow = (_columns(orm_user), _columns(orm_method))
    assert fast == slow
    # Types as the columns declare them: an aware datetime, the status enum, JSON.
    assert fast[1]["created_at"].utcoffset() == timedelta(0)  # type: ignore[attr-defined]
    assert fast[1]["status"] is slow[1]["status"]
    assert isinstance(fast[1]["protects"], dict) and isinstance(fast[1]["secret_ct"], bytes)


async def test_the_objects_are_persistent_in_the_session_as_loaded_ones_are(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        user, method = await queries.get_user_and_method(db, uid, "totp")
        assert user is not None and method is not None
        for obj in (user, method):
            state = inspect(obj)
            assert state.persistent and not state.modified and not state.expired_attributes
            assert state.session is db.sync_session and obj in db
        # The identity the mapper gives the row, and the identity map answers with them.
        assert inspect(user).key == identity_key(User, uid)
        assert await db.get(User, uid) is user
        assert await db.get(Method, method.id) is method
        db.expunge(method)
        assert inspect(method).detached and method not in db
        assert await db.get(Method, method.id) is not method  # read again, a new object


async def test_a_change_to_a_loaded_method_is_written_when_the_session_commits(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    later = clock.now() + timedelta(hours=3)
    async with runtime.db() as db:
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None
        method.last_used_at = later
        await db.commit()
    async with runtime.db() as db:
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None and method.last_used_at == later
        method.last_used_at = None  # not committed: rolled back with the session
    async with runtime.db() as db:
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None and method.last_used_at == later


async def test_an_identity_the_session_holds_is_answered_with_the_object_it_holds(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        held = await db.get(User, uid)
        assert held is not None
        held.language = "ru"  # pending, not flushed: a query would not overwrite it
        user, method = await queries.get_user_and_method(db, uid, "totp")
        again, same_method = await queries.get_user_and_method(db, uid, "totp")
        assert user is held and again is held and user.language == "ru"
        assert same_method is method


async def test_a_user_without_the_method_or_no_such_user(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        user, method = await queries.get_user_and_method(db, uid, "sms")
        assert user is not None and user.id == uid and method is None
        assert await queries.get_user_and_method(db, "0" * 32, "totp") == (None, None)


async def test_a_users_methods_are_the_orms_in_the_same_order(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        _user, totp = await queries.get_user_and_method(db, uid, "totp")
        fast = await queries.list_methods(db, uid)
        assert totp is not None and fast[0] is totp  # one object per identity
        fast_values = [_columns(m) for m in fast]
    async with runtime.db() as db:
        slow = (await db.execute(select(Method).where(Method.user_id == uid).order_by(
            Method.created_at, Method.type, Method.id))).scalars().all()
        assert fast_values == [_columns(m) for m in slow] and len(slow) >= 1
        assert await queries.list_methods(db, "0" * 32) == []


async def test_a_login_flow_and_its_user_are_the_orms(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    token_hash = b"\x01" * 32
    async with runtime.db() as db:
        db.add(LoginFlow(id="f" * 32, token_hash=token_hash, user_id=uid,
                         created_at=clock.now(), expires_at=clock.now() + timedelta(minutes=5),
                         used_at=None))
        await db.commit()
    async with runtime.db() as db:
        flow, user = await login_flows.get_login_flow_and_user(db, token_hash)
        assert isinstance(flow, LoginFlow) and isinstance(user, User) and user.id == uid
        fast = (_columns(flow), _columns(user))
        assert await login_flows.get_login_flow_and_user(db, b"\x02" * 32) == (None, None)
    async with runtime.db() as db:
        slow_flow = await db.get(LoginFlow, "f" * 32)
        slow_user = await db.get(User, uid)
        assert fast == (_columns(slow_flow), _columns(slow_user))
