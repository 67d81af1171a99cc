"""On PostgreSQL a portal's verify of a right authenticator-app code is two round trips:
the key's read (with the check's), sent before any BEGIN, then one call of
``stepup_spend_and_record`` (migration 0015) that spends the step, adds the audit event
and counts the key, a transaction of its own (store/step_spends.py). Whatever changed
between the read and that call — the step spent by a racing verify, a guard locked, the
user's chain moved, the key's rate used up — makes it write nothing, and the check runs
again the ordinary way, which answers as it always did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from stepup import metrics
from stepup.domain.clock import FrozenClock
from stepup.domain.policy import method_scope
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import audit as audit_store
from stepup.store import queries
from stepup.store.models import AuditEvent, Method
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker
from tests.pg.test_key_count_rides import statements

ACTOR = Actor(name="t")


def _window(clock: FrozenClock) -> Any:
    return clock.now().replace(second=0, microsecond=0)


@contextmanager
def begins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many transactions the asyncpg connections of this process begin meanwhile."""
    begun = [0]
    original = AsyncAdapt_asyncpg_connection._start_transaction

    async def counted(self: Any) -> None:
        begun[0] += 1
        await original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counted)
    yield begun
    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", original)


def meddle(monkeypatch: pytest.MonkeyPatch, change: Callable[[], Awaitable[None]]) -> None:
    """Run ``change`` (its own committed transaction) once, between a verify's read and
    its call."""
    original = audit_store._spend_and_record
    done: list[bool] = []

    async def meddled(*args: Any) -> None:
        if not done:
            done.append(True)
            await change()
        await original(*args)

    monkeypatch.setattr(audit_store, "_spend_and_record", meddled)


def _valid() -> float:
    text = metrics.exposition()[0].decode()
    line = 'stepup_verifications_total{method="totp",outcome="valid"}'
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


async def _events(runtime: Runtime, uid: str) -> list[str]:
    async with runtime.read() as db:
        rows = (await db.execute(select(AuditEvent.event).where(
            AuditEvent.user_id == uid).order_by(AuditEvent.id))).scalars().all()
        report = await audit.verify_chains(db)
    assert report.ok, report.breaks
    return list(rows)


async def _count(runtime: Runtime, key_id: str, clock: FrozenClock) -> int:
    async with runtime.read() as db:
        return await queries.rate_value(db, f"apikey:{key_id}", _window(clock))


async def _last_step(runtime: Runtime, uid: str) -> int | None:
    async with runtime.read() as db:
        step: int | None = (await db.execute(select(Method.last_step).where(
            Method.user_id == uid, Method.type == "totp"))).scalar_one()
        return step


async def _checker_used(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
                        *, rate: int) -> tuple[str, str, Any, str]:
    """``user_and_checker``, its key's last use recorded by a first call (a verify of a
    method the user has not enabled: 409, no guard touched), so that the next call's
    one write may be the ride's."""
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=rate)
    r = await verify(client, key, uid, "sms", "123456")
    assert r.status_code == 409, r.text
    return uid, secret, row, key


async def test_a_right_code_is_one_call_and_no_transaction_of_ours(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    code = pyotp.TOTP(secret).at(clock.now())
    r = await verify(client, key, uid, "totp", code)  # the key's last use recorded
    assert r.status_code == 200, r.text
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock.now())
    valid = _valid()
    with statements() as seen, begins(monkeypatch) as begun:
        r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 200, r.text
    assert len(seen) == 2 and "stepup_spend_and_record" in seen[1], seen
    assert begun == [0]  # no BEGIN, so no COMMIT: the call was its own transaction
    assert _valid() == valid + 1
    assert r.headers["RateLimit"].startswith('"key";r=8;')
    assert await _count(runtime, row.id, clock) == 2
    assert (await _events(runtime, uid))[-2:] == ["code.verified", "code.verified"]
    # Spent: the same code again is a replay.
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 409 and r.json()["code"] == "code_already_used", r.text


async def test_a_call_that_records_the_keys_last_use_takes_the_ordinary_way(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """Once a minute a key's call records its last use as well: two writes, which the
    one call could not make together, so the verify takes the ordinary way, whose
    writes commit in one transaction."""
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    with statements() as seen:
        r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    assert not any("stepup_spend_and_record" in s for s in seen), seen
    assert any(s.startswith("UPDATE methods SET last_step") for s in seen), seen
    assert any(s.startswith("UPDATE api_keys SET last_used_at") for s in seen), seen
    assert await _count(runtime, row.id, clock) == 1


async def test_a_step_spent_since_the_read_is_a_replay(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uid, secret, row, key = await _checker_used(client, runtime, clock, rate=10)
    code = pyotp.TOTP(secret).at(clock.now())
    step = int(clock.now().timestamp()) // 30

    async def spend() -> None:  # a racing verify of the same code won
        async with runtime.db() as db:
            method = await queries.get_method(db, uid, "totp")
            assert method is not None
            assert await queries.advance_counter(db, method, step, clock.now())
            await db.commit()

    meddle(monkeypatch, spend)
    valid = _valid()
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 409 and r.json()["code"] == "code_already_used", r.text
    assert _valid() == valid  # not told valid, then replayed
    assert await _count(runtime, row.id, clock) == 2
    events = await _events(runtime, uid)
    assert events[-1] == "code.replayed" and "code.verified" not in events


async def test_a_lock_set_since_the_read_refuses_and_spends_nothing(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uid, secret, row, key = await _checker_used(client, runtime, clock, rate=10)
    before = await _last_step(runtime, uid)

    async def lock() -> None:  # racing wrong guesses locked the method meanwhile
        async with runtime.db() as db:
            await queries.add_guard_failure(db, uid, method_scope("totp"))
            await queries.lock_guard(db, uid, method_scope("totp"),
                                     clock.now() + timedelta(minutes=5), 1)
            await db.commit()

    meddle(monkeypatch, lock)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 423 and r.json()["code"] == "method_locked", r.text
    assert await _last_step(runtime, uid) == before  # the code stays unspent
    assert await _count(runtime, row.id, clock) == 2
    assert "code.verified" not in await _events(runtime, uid)


async def test_a_chain_moved_since_the_read_is_chained_to_its_new_head(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uid, secret, row, key = await _checker_used(client, runtime, clock, rate=10)

    async def event() -> None:  # another of the user's events committed meanwhile
        async with runtime.db() as db:
            await audit.record(db, runtime.clock, ACTOR, "account.email_verified", uid)
            await db.commit()

    meddle(monkeypatch, event)
    code = pyotp.TOTP(secret).at(clock.now())
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 200, r.text
    assert (await _events(runtime, uid))[-2:] == ["account.email_verified", "code.verified"]
    assert await _count(runtime, row.id, clock) == 2
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 409, r.text  # spent once, by the check that ran again


async def test_a_rate_used_up_since_the_read_keeps_nothing(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uid, secret, row, key = await _checker_used(client, runtime, clock, rate=3)
    before = await _last_step(runtime, uid)

    async def calls() -> None:  # racing calls of the key took the rest of its minute
        async with runtime.db() as db:
            await queries.rate_hit(db, f"apikey:{row.id}", _window(clock), amount=2)
            await db.commit()

    meddle(monkeypatch, calls)
    r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 429 and r.json()["code"] == "api_quota_exceeded", r.text
    assert await _last_step(runtime, uid) == before
    assert await _count(runtime, row.id, clock) == 3  # this call's count undone with it
    async with runtime.read() as db:
        verified = (await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.event == "code.verified"))).scalar_one()
    assert verified == 0
