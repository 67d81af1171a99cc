"""The statements of a verification run straight on the driver's cursor (store/driver.py):
they must answer exactly what SQLAlchemy's engine answers for the same statement, fail as
the engine fails, and leave to the engine what they cannot run as fixed SQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError, StatementError

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import api_keys, audit, driver, queries
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker


def _planned(statement: object, dialect: str, names: set[str]) -> driver._Plan | None:
    found = driver._plans.get((id(statement), dialect, tuple(sorted(names))))
    assert found is not None, "the statement was never run through driver.run"
    return found[1]


async def test_the_key_row_read_on_the_driver_is_the_engines_row(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=8)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    params = {"hash": row.key_hash, "user_id": uid, "prefix": "apikey:",
              "start": clock.now().replace(second=0, microsecond=0)}
    async with runtime.db() as db:
        fast = (await queries.core(db, api_keys._KEY_OWNER_AND_USED, params)).first()
        slow = (await db.execute(api_keys._KEY_OWNER_AND_USED, params)).first()
        dialect = db.get_bind().dialect.name
    assert _planned(api_keys._KEY_OWNER_AND_USED, dialect, set(params)) is not None
    assert fast._asdict() == slow._asdict()
    # Types as the columns declare them, not as the driver stores them.
    assert fast.used == 1 and fast.owner_app_id == slow.owner_app_id
    assert fast.scopes == ["verify"] and isinstance(fast.key_hash, bytes)
    assert fast.last_used_at == clock.now() and fast.last_used_at.utcoffset() == timedelta(0)
    assert fast.revoked_at is None


async def test_a_conditional_update_counts_its_rows_so_a_step_is_used_once(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None
        step = 10**8
        params = {"method_id": method.id, "step": step, "now": clock.now()}
        first = await queries.core(db, queries._ADVANCE_STEP, params)
        again = await queries.core(db, queries._ADVANCE_STEP, params)
        assert (first.rowcount, again.rowcount) == (1, 0)
        await db.rollback()


async def test_guards_read_with_the_user_are_the_guards_read_alone(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """The guards joined to the user's read (a verification's) are what the guards' own
    query answers: none, a failure count, and a lock with its time."""
    uid, _secret, _row, key = await user_and_checker(client, runtime, clock, rate=100)
    scopes = ("account", "method:totp")
    for wrong in range(6):  # five wrong codes lock the method; a sixth finds it locked
        r = await verify(client, key, uid, "totp", "000000")
        assert r.status_code == (400 if wrong < 4 else 423), r.text
        async with runtime.db() as db:
            user, method, joined = await queries.get_user_method_and_guards(
                db, uid, "totp", scopes)
            alone = await queries.get_guard_states(db, uid, list(scopes))
        assert user is not None and method is not None and method.type == "totp"
        assert joined == alone and set(joined) == set(scopes)
    failures, _level, until = joined["method:totp"]
    assert failures == 0 and until is not None and until > clock.now()
    assert until.utcoffset() == timedelta(0)
    async with runtime.db() as db:
        assert await queries.get_user_method_and_guards(db, "0" * 32, "totp", scopes) == (
            None, None, {})


def _event(at: datetime, **values: Any) -> dict[str, Any]:
    """An audit row's columns (all but the id), to insert as it is."""
    return {"user_id": None, "actor": "test", "event": "test.event", "ip": None,
            "user_agent": None, "data": {}, "created_at": at, "prev_hash": None,
            "hash": "h" * 64, **values}


_EXPANDING = (select(audit._events.c.event)
              .where(audit._events.c.event.in_(bindparam("events", expanding=True))))


async def test_a_statement_whose_sql_depends_on_its_values_goes_through_the_engine(
        runtime: Runtime, clock: FrozenClock) -> None:
    row = _event(clock.now())
    async with runtime.db() as db:
        await queries.core(db, audit._ADD, {**row, "id": 10**9})
        found = (await queries.core(db, _EXPANDING,
                                    {"events": ["test.event", "code.verified"]})).all()
        dialect = db.get_bind().dialect.name
        await db.rollback()
    assert [tuple(r) for r in found] == [("test.event",)]
    assert _planned(_EXPANDING, dialect, {"events"}) is None


async def test_the_new_device_check_reads_on_the_driver(
        runtime: Runtime, clock: FrozenClock) -> None:
    """The account's recent origins: the events are the statement's own values, so its
    SQL is fixed and it takes the driver's path; it finds what the engine finds."""
    rows = [_event(clock.now() - timedelta(days=age), user_id="u" * 32, event=event, ip=ip,
                   user_agent=agent)
            for event, ip, agent, age in (("login.succeeded", "192.0.2.1", "A", 1),
                                          ("code.verified", "192.0.2.2", "B", 1),
                                          ("account.created", "192.0.2.3", "C", 2),
                                          ("login.succeeded", "192.0.2.4", "D", 40))]
    async with runtime.db() as db:
        for i, row in enumerate(rows):
            await queries.core(db, audit._ADD, {**row, "id": 10**9 + i})
        found = await audit.origins_since(db, "u" * 32, clock.now() - timedelta(days=30))
        dialect = db.get_bind().dialect.name
        await db.rollback()
    assert found == [("192.0.2.3", "C"), ("192.0.2.1", "A")]
    assert _planned(audit._ORIGINS, dialect, {"user_id", "since", "limit"}) is not None


async def test_a_failing_statement_raises_the_engines_error_and_the_session_recovers(
        runtime: Runtime, clock: FrozenClock) -> None:
    row = _event(clock.now())
    async with runtime.db() as db:
        await queries.core(db, audit._ADD, {**row, "id": 10**9})
        with pytest.raises(IntegrityError):
            await queries.core(db, audit._ADD, {**row, "id": 10**9})
        await db.rollback()
        assert (await queries.core(db, audit._HEAD, {"user_id": "0" * 32})).first() is None


_LITERAL_AND_HEAD = (select(literal(41) + literal(1), audit._users.c.audit_head)
                     .where(audit._users.c.id == bindparam("user_id")))


async def test_values_written_into_a_statement_and_missing_ones_as_the_engine_has_them(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        row = (await queries.core(db, _LITERAL_AND_HEAD, {"user_id": uid})).one()
        assert row[0] == 42 and row[1] is not None  # enrolling wrote the chain's head
        with pytest.raises(StatementError, match="'user_id'") as fast:
            await queries.core(db, _LITERAL_AND_HEAD, {})
        with pytest.raises(StatementError, match="'user_id'") as slow:
            await db.execute(_LITERAL_AND_HEAD, {})
        assert type(fast.value) is type(slow.value)
        assert type(fast.value.orig) is type(slow.value.orig) is InvalidRequestError
        dialect = db.get_bind().dialect.name
    assert _planned(_LITERAL_AND_HEAD, dialect, {"user_id"}) is not None


_BACKEND = select(func.pg_backend_pid())


def _postgres_only(db: Any) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("asyncpg's path: PostgreSQL only")


async def test_on_postgresql_statements_in_an_open_transaction_skip_the_greenlet(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the session's transaction is open, a statement is awaited on asyncpg's
    connection (``driver.run_asyncpg``), not run through ``run_sync``; it answers what
    the engine answers, in the same transaction."""
    uid, _secret, _row, _key = await user_and_checker(client, runtime, clock, rate=8)
    async with runtime.db() as db:
        _postgres_only(db)
        hops: list[object] = []
        run_sync = type(db).run_sync

        async def counted(self: Any, fn: Any, *args: Any, **kw: Any) -> Any:
            hops.append(fn)
            return await run_sync(self, fn, *args, **kw)

        monkeypatch.setattr(type(db), "run_sync", counted)
        pid = (await queries.core(db, _BACKEND, {})).scalar_one()  # opens: one hop
        assert len(hops) == 1
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None
        params = {"method_id": method.id, "step": 10**8, "now": clock.now()}
        first = await queries.core(db, queries._ADVANCE_STEP, params)
        again = await queries.core(db, queries._ADVANCE_STEP, params)
        assert (first.rowcount, again.rowcount) == (1, 0)
        fast = (await queries.core(db, _LITERAL_AND_HEAD, {"user_id": uid})).one()
        assert len(hops) == 1, "a statement in the open transaction hopped"
        monkeypatch.undo()
        slow = (await db.execute(_LITERAL_AND_HEAD, {"user_id": uid})).one()
        assert tuple(fast) == tuple(slow)
        assert (await db.execute(_BACKEND)).scalar_one() == pid  # the one connection
        await db.rollback()
    async with runtime.db() as db:  # rolled back: the step is still unspent
        _user, method = await queries.get_user_and_method(db, uid, "totp")
        assert method is not None and method.last_step != 10**8


async def test_on_postgresql_a_lost_connection_fails_as_the_engine_fails_and_is_dropped(
        runtime: Runtime, clock: FrozenClock) -> None:
    """The server ends the session's backend mid-transaction: the next statement raises
    the engine's error marked as a lost connection, the pool drops that connection, and
    the session works again after its rollback."""
    async with runtime.db() as db:
        _postgres_only(db)
        pid = (await queries.core(db, _BACKEND, {})).scalar_one()
        async with runtime.db() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(DBAPIError) as lost:
            await queries.core(db, audit._HEAD, {"user_id": "0" * 32})
        assert lost.value.connection_invalidated
        await db.rollback()
        again = (await queries.core(db, _BACKEND, {})).scalar_one()
        assert again != pid
        assert (await queries.core(db, audit._HEAD, {"user_id": "0" * 32})).first() is None
