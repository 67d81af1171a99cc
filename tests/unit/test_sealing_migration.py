"""Upgrading a database that kept destinations in clear (revision 0008): ``stepup
migrate`` seals them with the runtime's key ring, and the user still gets codes at the
phone. Without the keys the upgrade refuses and changes nothing. On SQLite a file of its
own, on PostgreSQL (``STEPUP_TEST_DB=postgres``) a database of its own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import JSON, column, insert, select, table, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import methods as methods_service
from stepup.services import notifications
from stepup.services.runtime import Actor, Runtime
from stepup.store import codes, migrate
from stepup.store.db import make_engine
from stepup.store.models import (
    Base,
    Challenge,
    Method,
    NotificationQueue,
    RateCounter,
    User,
    UTCDateTime,
)

PHONE = "+79161234567"
CLEAR = (PHONE, PHONE.lstrip("+"), "9161234567")
CODE = "480213"

# The tables as 0008 left them: the destination in clear.
OLD_METHODS = table("methods", column("id"), column("user_id"), column("type"),
                    column("status"), column("protects", JSON), column("destination"),
                    column("created_at", UTCDateTime()), column("enabled_at", UTCDateTime()))
OLD_CODES = table("oob_codes", column("id"), column("user_id"), column("channel"),
                  column("destination"), column("purpose"), column("code_hash"),
                  column("created_at", UTCDateTime()), column("expires_at", UTCDateTime()),
                  column("sent_at", UTCDateTime()), column("attempts"))
OLD_NOTICES = table("notification_queue", column("id"), column("user_id"), column("kind"),
                    column("channel"), column("destination"), column("language"),
                    column("data", JSON), column("created_at", UTCDateTime()),
                    column("attempts"), column("next_attempt_at", UTCDateTime()),
                    column("sent_at", UTCDateTime()))


@pytest.fixture
async def old_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"stepup_old_{secrets.token_hex(4)}"
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()


def _upgrade_to(conn: Connection, revision: str) -> None:
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def at_0008_with_a_phone(engine: AsyncEngine, clock: FrozenClock,
                               code_hash: str = "0" * 64) -> None:
    """A user with SMS enabled, a code sent and one waiting, a notice queued and one
    sent, and the hour's per-destination counter: all naming the phone in clear."""
    now = clock.now()
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_to, "0008")
    async with engine.begin() as conn:
        await conn.execute(insert(User).values(
            id="u1", app_id="portal", email="jane@example.com", email_verified=True,
            phone_verified=True, verification_grade=1, language="en", must_enroll=False,
            created_at=now))
        await conn.execute(insert(OLD_METHODS).values(
            id="m1", user_id="u1", type="sms", status="enabled",
            protects={"login": True, "withdrawal": False}, destination=PHONE,
            created_at=now, enabled_at=now))
        ago = now - timedelta(minutes=2)
        await conn.execute(insert(OLD_CODES).values(
            id="sent", user_id="u1", channel="sms", destination=PHONE,
            purpose="manage:sms", code_hash=code_hash, created_at=ago,
            expires_at=ago + timedelta(minutes=10), sent_at=ago, attempts=0))
        await conn.execute(insert(OLD_CODES).values(
            id="waiting", user_id="u1", channel="sms", destination=PHONE, purpose="login",
            code_hash="1" * 64, created_at=now, expires_at=now + timedelta(minutes=10),
            sent_at=None, attempts=0))
        for notice_id, sent_at, due in (("queued", None, now), ("told", ago, None)):
            await conn.execute(insert(OLD_NOTICES).values(
                id=notice_id, user_id="u1", kind="method.enabled", channel="sms",
                destination=PHONE, language="en", data={"method": "sms", "at": ago.isoformat()},
                created_at=ago, attempts=0, next_attempt_at=due, sent_at=sent_at))
        await conn.execute(insert(RateCounter).values(
            key=f"send-dest:{PHONE}", window_start=now.replace(minute=0, second=0), count=3))


async def columns_in_clear(engine: AsyncEngine) -> list[str]:
    found = []
    async with engine.connect() as conn:
        for t in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(t))).mappings():
                for name, value in row.items():
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{t.name}.{name}" for c in CLEAR if c.encode() in blob]
    return found


def _checkpoint(conn: Connection) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cursor.close()


async def file_bytes(engine: AsyncEngine, url: str) -> bytes:
    async with engine.connect() as conn:
        await conn.run_sync(_checkpoint)
    path = Path(url.split(":///", 1)[1])
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_migrate_seals_every_phone_and_the_user_still_gets_codes(
        old_database: str, tmp_path: Path, clock: FrozenClock) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=old_database,
                        issuer="StepUp Test", public_url="http://testserver")
    rt = Runtime.build(settings, clock)  # as `stepup migrate` does: its keys seal
    try:
        await at_0008_with_a_phone(rt.engine, clock,
                                   code_hash=rt.hasher.mac("oob-code", "sent", CODE))
        if rt.engine.dialect.name == "sqlite":
            assert PHONE.encode() in await file_bytes(rt.engine, old_database)
        await migrate.upgrade(rt.engine)
        assert await migrate.is_current(rt.engine)

        assert await columns_in_clear(rt.engine) == []
        if rt.engine.dialect.name == "sqlite":
            raw = await file_bytes(rt.engine, old_database)
            assert [c for c in CLEAR if c.encode() in raw] == []
        seal, hashed = rt.destinations, rt.destinations.hash(PHONE)
        async with rt.db() as db:
            method = await db.get(Method, "m1")
            sent, waiting = await db.get(Challenge, "sent"), await db.get(Challenge, "waiting")
            queued = await db.get(NotificationQueue, "queued")
            told = await db.get(NotificationQueue, "told")
            counters = (await db.execute(select(RateCounter))).scalars().all()
        assert method is not None and seal.read(method) == PHONE
        assert method.destination_hash == hashed
        # A code that went out keeps only the hash; one still waiting, its sealed phone.
        assert sent is not None and (sent.destination_ct, sent.destination_hash) == (
            None, hashed)
        assert waiting is not None and seal.read(waiting) == PHONE
        assert queued is not None and seal.read(queued) == PHONE
        assert told is not None and (told.destination_kid, told.destination_ct) == (None, None)
        # The hour's count carries over, under the hash.
        assert [(c.key, c.count) for c in counters] == [(f"send-dest:{hashed}", 3)]

        # The code sent before the upgrade still serves; new codes and the queued notice
        # reach the phone (the development outbox stands in for the SMS provider).
        await methods_service.switch(rt, Actor(), "u1", "sms", {"withdrawal": True}, CODE)
        sent_now = await methods_service.challenge(rt, Actor(), "u1", "sms")
        assert sent_now.sent_to == "+7 *** ***-45-67"
        assert await notifications.deliver_due(rt) >= 2
        async with rt.db() as db:
            texts = [m.body for m in await codes.outbox_for(db, PHONE)]
        assert sum("is your security code" in t for t in texts) == 1
        assert sum("SMS codes were enabled" in t for t in texts) == 1  # the queued notice
    finally:
        await rt.engine.dispose()


async def test_without_the_keys_the_upgrade_refuses_and_changes_nothing(
        old_database: str, clock: FrozenClock) -> None:
    engine = make_engine(old_database)  # no runtime: nobody handed a seal over
    try:
        await at_0008_with_a_phone(engine, clock)
        with pytest.raises(RuntimeError, match="stepup migrate"):
            await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == "0008"
        async with engine.connect() as conn:
            phones = (await conn.execute(select(OLD_METHODS.c.destination))).scalars().all()
        assert phones == [PHONE]
    finally:
        await engine.dispose()
