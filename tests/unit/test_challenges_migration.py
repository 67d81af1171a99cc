"""Revision 0011 names the table of codes and passkey requests for what it holds
(``oob_codes`` → ``challenges``): nothing is lost, a code waiting for delivery keeps its
sealed destination (sealed again under the new name), it goes back down as it came up,
and without the keys it refuses rather than leave a destination nobody can open. On
SQLite a file of its own, on PostgreSQL (``STEPUP_TEST_DB=postgres``) a database of its
own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import column, insert, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.domain.keyring import KeyRing
from stepup.domain.sealing import DestinationSeal
from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import Challenge, User
from tests.unit.test_sealing_migration import old_database

__all__ = ["old_database"]  # the fixture: a database of its own

PHONE = "+79161234567"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def a_seal() -> DestinationSeal:
    return DestinationSeal(KeyRing.parse(KeyRing.generate_spec()), b"h" * 32)


def _to(conn: Connection, revision: str, seal: DestinationSeal | None = None,
        down: bool = False) -> None:
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = conn
    cfg.attributes[migrate.SEAL] = seal
    (command.downgrade if down else command.upgrade)(cfg, revision)


async def at_0010(engine: AsyncEngine, seal: DestinationSeal) -> None:
    """A user with a code sent, a code waiting for delivery and a passkey request."""
    async with engine.begin() as conn:
        await conn.run_sync(_to, "0010")
        await conn.execute(insert(User).values(
            id="u1", app_id="portal", email="jane@example.com", email_verified=True,
            phone_verified=True, verification_grade=1, language="en", must_enroll=False,
            created_at=NOW))
        kid, ct = seal.seal("oob_codes", "waiting", PHONE)
        old = table("oob_codes", *(column(c.name, c.type) for c in Challenge.__table__.columns))
        common = {"user_id": "u1", "code_hash": "0" * 64, "created_at": NOW,
                  "expires_at": NOW + timedelta(minutes=10), "attempts": 0}
        await conn.execute(insert(old), [
            {**common, "id": "sent", "channel": "sms", "purpose": "login", "sent_at": NOW,
             "destination_kid": None, "destination_ct": None,
             "destination_hash": seal.hash(PHONE), "used_at": None},
            {**common, "id": "waiting", "channel": "sms", "purpose": "manage:sms",
             "sent_at": None, "destination_kid": kid, "destination_ct": ct,
             "destination_hash": seal.hash(PHONE), "used_at": None},
            {**common, "id": "passkey", "channel": "webauthn", "purpose": "login",
             "sent_at": NOW, "destination_kid": None, "destination_ct": None,
             "destination_hash": None, "used_at": None},
        ])


def _names(conn: Connection) -> tuple[list[str], list[str]]:
    found = inspect(conn)
    tables = found.get_table_names()
    name = "challenges" if "challenges" in tables else "oob_codes"
    return [t for t in tables if t in ("challenges", "oob_codes")], \
        [i["name"] or "" for i in found.get_indexes(name)]


async def test_0011_renames_the_table_and_keeps_every_challenge(old_database: str) -> None:
    engine = make_engine(old_database)
    seal = a_seal()
    try:
        await at_0010(engine, seal)
        await migrate.upgrade(engine, seal)
        assert await migrate.is_current(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_names) == (["challenges"], ["ix_challenges_lookup"])
            rows = {r.id: r for r in (await conn.execute(select(Challenge))).all()}
            if engine.dialect.name == "postgresql":
                constraints = set((await conn.execute(text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = "
                    "'challenges'::regclass"))).scalars())
                assert constraints == {"challenges_pkey", "challenges_user_id_fkey"}
        assert set(rows) == {"sent", "waiting", "passkey"}
        waiting = rows["waiting"]
        # Sealed again for its new table: it opens there, and only there.
        assert seal.open("challenges", "waiting", waiting.destination_kid,
                         waiting.destination_ct) == PHONE
        assert rows["sent"].destination_ct is None
        assert rows["sent"].destination_hash == seal.hash(PHONE)

        async with engine.begin() as conn:
            await conn.run_sync(_to, "0010", seal, True)
        async with engine.connect() as conn:
            assert await conn.run_sync(_names) == (["oob_codes"], ["ix_oob_codes_lookup"])
            kid, ct = (await conn.execute(text(
                "SELECT destination_kid, destination_ct FROM oob_codes "
                "WHERE id = 'waiting'"))).one()
        assert seal.open("oob_codes", "waiting", kid, ct) == PHONE
    finally:
        await engine.dispose()


async def test_without_the_keys_0011_refuses_when_a_code_waits(old_database: str) -> None:
    engine = make_engine(old_database)
    try:
        await at_0010(engine, a_seal())
        with pytest.raises(RuntimeError, match="stepup migrate"):
            await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == "0010"
        async with engine.connect() as conn:
            assert (await conn.run_sync(_names))[0] == ["oob_codes"]
    finally:
        await engine.dispose()
