"""The audit log's hash chains: intact after a busy flow and under concurrent writers;
an edited, removed or reordered row is found at the right id, by the service and by
``stepup audit verify`` (exit code 1)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select, text, update

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, audit
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, User
from tests.api.helpers import (
    auth,
    enable_backup_codes,
    enable_totp,
    login_token,
    session_for,
    sign_up,
    verify,
    wrong_totp,
)


async def busy(client: httpx.AsyncClient, rt: Runtime, clock: FrozenClock) -> None:
    """Two accounts doing a bit of everything, and events without an account."""
    for email in ("jane@example.com", "omar@example.com"):
        await sign_up(client, email)
        token = await session_for(client, email)
        secret = await enable_totp(client, token, clock)
        await enable_backup_codes(client, token)
        lt = await login_token(client, email)
        await verify(client, lt, "totp", wrong_totp(secret, clock))
        r = await client.post("/api/v1/login", json={"email": email, "password": "wrong"})
        assert r.status_code == 401
    r = await client.post("/api/v1/login", json={"email": "nobody@example.com",
                                                 "password": "wrong"})
    assert r.status_code == 401
    await apikeys.create(rt, "portal", "app", Actor(name="cli"))


async def events(rt: Runtime, user_id: str | None = None) -> list[AuditEvent]:
    async with rt.db() as db:
        q = select(AuditEvent).order_by(AuditEvent.id)
        if user_id is not None:
            q = q.where(AuditEvent.user_id == user_id)
        return list((await db.execute(q)).scalars().all())


async def user_id(rt: Runtime, email: str) -> str:
    async with rt.db() as db:
        uid = (await db.execute(select(User.id).where(User.email == email))).scalar_one()
        return str(uid)


async def sql(rt: Runtime, statement: str, **params: object) -> None:
    async with rt.db() as db:
        await db.execute(text(statement), params)
        await db.commit()


def run_cli(settings: Settings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEPUP_DATABASE_URL": settings.effective_database_url,
           "STEPUP_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "stepup.cli", "audit", "verify"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)


async def test_chains_are_intact_after_a_busy_flow(client: httpx.AsyncClient,
                                                   runtime: Runtime,
                                                   clock: FrozenClock) -> None:
    await busy(client, runtime, clock)
    report = await audit.verify(runtime)
    assert report.ok, report.breaks
    assert report.chains == 3 and report.events == len(await events(runtime))
    # Each account's chain links its own events, and its head is its newest hash.
    jane = await user_id(runtime, "jane@example.com")
    mine = await events(runtime, jane)
    assert mine[0].prev_hash is None
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(mine))
    async with runtime.db() as db:
        user = await db.get(User, jane)
        assert user is not None and user.audit_head == mine[-1].hash
    glob = [e for e in await events(runtime) if e.user_id is None]
    assert [e.event for e in glob] == ["login.password_failed", "app.created",
                                          "apikey.created"]  # the app "default", made then
    assert glob[0].prev_hash is None and glob[1].prev_hash == glob[0].hash


async def test_an_edited_row_is_found(client: httpx.AsyncClient, runtime: Runtime,
                                      clock: FrozenClock, settings: Settings,
                                      tmp_path: Path) -> None:
    await busy(client, runtime, clock)
    ok = run_cli(settings, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK:")
    omar = await events(runtime, await user_id(runtime, "omar@example.com"))
    target = next(e for e in omar if e.event == "code.failed")
    async with runtime.db() as db:
        await db.execute(update(AuditEvent).where(AuditEvent.id == target.id)
                         .values(data={**target.data, "reason": "nothing to see"}))
        await db.commit()
    report = await audit.verify(runtime)
    assert report.first is not None
    assert (report.first.event_id, report.first.user_id) == (target.id, target.user_id)
    assert "edited" in report.first.problem
    assert len(report.breaks) == 1  # the other account's chain is intact

    broken = run_cli(settings, tmp_path)
    assert broken.returncode == 1
    assert f"BROKEN: event {target.id} (account {target.user_id})" in broken.stderr
    assert "edited" in broken.stderr


async def test_an_edited_column_and_a_global_event_are_found(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await busy(client, runtime, clock)
    key_event = next(e for e in await events(runtime) if e.event == "apikey.created")
    await sql(runtime, "UPDATE audit_events SET actor = 'someone else' WHERE id = :id",
              id=key_event.id)
    first = (await audit.verify(runtime)).first
    assert first is not None and (first.event_id, first.user_id) == (key_event.id, None)
    await sql(runtime, "UPDATE audit_events SET actor = 'cli' WHERE id = :id", id=key_event.id)
    assert (await audit.verify(runtime)).ok  # put back as it was: intact again

    jane = await events(runtime, await user_id(runtime, "jane@example.com"))
    await sql(runtime, "UPDATE audit_events SET ip = '198.51.100.1' WHERE id = :id",
              id=jane[3].id)
    first = (await audit.verify(runtime)).first
    assert first is not None and first.event_id == jane[3].id


async def test_a_removed_row_is_found_at_the_next_one(client: httpx.AsyncClient,
                                                      runtime: Runtime, clock: FrozenClock,
                                                      settings: Settings,
                                                      tmp_path: Path) -> None:
    await busy(client, runtime, clock)
    jane = await events(runtime, await user_id(runtime, "jane@example.com"))
    await sql(runtime, "DELETE FROM audit_events WHERE id = :id", id=jane[4].id)
    first = (await audit.verify(runtime)).first
    assert first is not None and first.event_id == jane[5].id
    assert "removed" in first.problem
    broken = run_cli(settings, tmp_path)
    assert broken.returncode == 1 and f"event {jane[5].id}" in broken.stderr


async def test_removing_the_newest_rows_is_found_by_the_head(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await busy(client, runtime, clock)
    jane = await events(runtime, await user_id(runtime, "jane@example.com"))
    await sql(runtime, "DELETE FROM audit_events WHERE id >= :id AND user_id = :u",
              id=jane[-2].id, u=jane[0].user_id)
    first = (await audit.verify(runtime)).first
    assert first is not None and first.event_id == jane[-3].id
    assert "head" in first.problem


async def test_reordered_rows_are_found(client: httpx.AsyncClient, runtime: Runtime,
                                        clock: FrozenClock) -> None:
    await busy(client, runtime, clock)
    jane = await events(runtime, await user_id(runtime, "jane@example.com"))
    a, b = jane[2].id, jane[3].id
    # Swap two rows' places in the log (their ids), content untouched.
    await sql(runtime, "UPDATE audit_events SET id = :tmp WHERE id = :a", tmp=-1, a=a)
    await sql(runtime, "UPDATE audit_events SET id = :a WHERE id = :b", a=a, b=b)
    await sql(runtime, "UPDATE audit_events SET id = :b WHERE id = :tmp", b=b, tmp=-1)
    first = (await audit.verify(runtime)).first
    assert first is not None and first.event_id == a
    assert "moved" in first.problem


async def test_concurrent_writers_keep_every_chain_intact(runtime: Runtime,
                                                          client: httpx.AsyncClient) -> None:
    await sign_up(client, "jane@example.com")
    await sign_up(client, "omar@example.com")
    ids = [await user_id(runtime, e) for e in ("jane@example.com", "omar@example.com")]

    async def write(n: int) -> None:
        async with runtime.db() as db:
            await audit.record(db, runtime.clock, Actor(ip="192.0.2.1"), "test.event",
                               ids[n % 3] if n % 3 < 2 else None, n=n)
            await audit.record(db, runtime.clock, Actor(), "test.second", None, n=n)
            await db.commit()

    await asyncio.gather(*(write(n) for n in range(24)))
    report = await audit.verify(runtime)
    assert report.ok, report.breaks
    # Each sign-up: created, its e-mail verification sent and followed (3 events).
    assert report.events == 2 * 3 + 24 * 2


async def test_an_account_given_as_its_object_chains_to_the_row_s_head(
        runtime: Runtime, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """``record`` given the account's object chains to the head the object holds only
    while the row still holds it: an object read before another event committed, or
    read by transactions racing each other, is chained to the row's head."""
    await sign_up(client, "jane@example.com")
    uid = await user_id(runtime, "jane@example.com")
    async with runtime.db() as db:
        stale = await db.get(User, uid)
    assert stale is not None
    clock.advance(60)  # the events come later than the account
    async with runtime.db() as db:  # the head moves on after ``stale`` was read
        await audit.record(db, runtime.clock, Actor(), "test.between", uid)
        await db.commit()
    async with runtime.db() as db:
        await audit.record(db, runtime.clock, Actor(), "test.stale", stale)
        fresh = await db.get(User, uid)
        assert fresh is not None
        await audit.record(db, runtime.clock, Actor(), "test.fresh", fresh)
        await audit.record(db, runtime.clock, Actor(), "test.again", fresh)
        await db.commit()

    async def racing(n: int) -> None:
        async with runtime.db() as db:
            user = await db.get(User, uid)
            await asyncio.sleep(0)  # others may commit events in between
            await audit.record(db, runtime.clock, Actor(), "test.race", user, n=n)
            await audit.record(db, runtime.clock, Actor(), "test.race2", user, n=n)
            await db.commit()

    await asyncio.gather(*(racing(n) for n in range(12)))
    report = await audit.verify(runtime)
    assert report.ok, report.breaks
    chain = await events(runtime, uid)
    assert [e.event for e in chain][-27:-24] == ["test.stale", "test.fresh", "test.again"]
    async with runtime.db() as db:
        head, created = (await db.execute(select(User.audit_head, User.created_at)
                                          .where(User.id == uid))).one()
    assert head == chain[-1].hash and stale.audit_head == chain[-27].hash
    assert created == stale.created_at  # the head moved, nothing else of the account


async def test_events_api_reads_do_not_touch_the_chain(client: httpx.AsyncClient,
                                                       runtime: Runtime) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.get("/api/v1/me/events", headers=auth(token))
    assert r.status_code == 200
    assert (await audit.verify(runtime)).ok
