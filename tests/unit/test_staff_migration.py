"""Revision 0012 turns each staff member into a user of the hidden app ``staff``: the
same password logs in afterwards, and the same authenticator app (its seed sealed again
for the new method, its last time step kept, so a code used before stays used). Without
the keys it refuses and changes nothing. On SQLite a file of its own, on PostgreSQL
(``STEPUP_TEST_DB=postgres``) a database of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import column, insert, inspect, select, table
from sqlalchemy.engine import Connection

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.errors import CodeAlreadyUsed
from stepup.domain.keyring import KeyRing
from stepup.methods import totp
from stepup.services import staff
from stepup.services.runtime import Actor, Runtime
from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import STAFF_APP_ID, Method, User
from tests.unit.test_sealing_migration import old_database

__all__ = ["old_database"]  # the fixture: a database of its own

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
PASSWORD = "staff-correct-horse-42"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OLD_STAFF = table("staff", column("id"), column("email"), column("name"), column("role"),
                  column("password_hash"), column("totp_kid"), column("totp_ct"),
                  column("totp_last_step"), column("created_at"), column("disabled_at"))


def _to(conn: Connection, revision: str) -> None:
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def runtime_on(url: str, tmp_path: Path, clock: FrozenClock,
                     keyring: str | None = None) -> Runtime:
    settings = Settings(data_dir=tmp_path / "data", database_url=url,
                        keyring=keyring or KeyRing.generate_spec(),
                        secret_key="s" * 64, issuer="StepUp Test")
    return Runtime.build(settings, clock)


async def at_0011_with_staff(rt: Runtime) -> None:
    """Sam, with an authenticator app whose current step was used; Ann, without one."""
    async with rt.engine.begin() as conn:
        await conn.run_sync(_to, "0011")
        kid, ct = rt.keyring.encrypt(SECRET.encode(), b"staff-totp:s1")
        common = {"role": "support", "created_at": NOW, "disabled_at": None,
                  "password_hash": rt.hasher.hash_password(PASSWORD)}
        await conn.execute(insert(OLD_STAFF), [
            {**common, "id": "s1", "email": "sam@example.com", "name": "Sam",
             "totp_kid": kid, "totp_ct": ct, "totp_last_step": totp.time_step(NOW)},
            {**common, "id": "s2", "email": "ann@example.com", "name": "Ann",
             "totp_kid": None, "totp_ct": None, "totp_last_step": None},
        ])


async def test_0012_staff_log_in_afterwards_as_before(old_database: str,
                                                      tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    rt = await runtime_on(old_database, tmp_path, clock)
    try:
        await at_0011_with_staff(rt)
        await migrate.upgrade(rt.engine)  # with the runtime's keys (use_seal)
        assert await migrate.is_current(rt.engine)
        async with rt.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("staff")})
            users = (await conn.execute(select(User.email, User.app_id))).all()
            methods = (await conn.execute(select(Method.type, Method.status,
                                                 Method.protects))).all()
        assert "staff_sessions" not in tables
        assert columns == {"id", "user_id", "email", "name", "role", "created_at",
                           "disabled_at"}
        assert sorted(users) == [("ann@example.com", STAFF_APP_ID),
                                 ("sam@example.com", STAFF_APP_ID)]
        assert [(m[0], m[1].value, m[2]["login"]) for m in methods] == [
            ("totp", "enabled", True)]

        # Sam: the same password, then a code of the same seed. The step used before the
        # upgrade stays used.
        flow = (await staff.password_step(rt, Actor(), "sam@example.com", PASSWORD)
                ).login_token
        assert flow is not None
        with pytest.raises(CodeAlreadyUsed):
            await staff.second_factor(rt, Actor(), flow, "totp",
                                      totp.code_at(SECRET, totp.time_step(clock.now())))
        clock.advance(30)
        session = await staff.second_factor(rt, Actor(), flow, "totp",
                                            totp.code_at(SECRET,
                                                         totp.time_step(clock.now())))
        assert (await staff.resolve(rt, session)).staff.id == "s1"
    finally:
        await rt.engine.dispose()


async def test_without_the_keys_0012_refuses_when_staff_have_a_seed(old_database: str,
                                                                    tmp_path: Path) -> None:
    rt = await runtime_on(old_database, tmp_path, FrozenClock(NOW))
    try:
        await at_0011_with_staff(rt)
        # An engine of its own: no runtime handed it its keys (Alembic alone).
        bare = make_engine(old_database)
        try:
            with pytest.raises(RuntimeError, match="stepup migrate"):
                await migrate.upgrade(bare)
        finally:
            await bare.dispose()
        assert await migrate.current_revision(rt.engine) == "0011"
        async with rt.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "staff_sessions" in tables
    finally:
        await rt.engine.dispose()


async def test_0012_goes_back_down_with_the_staff_as_they_were(old_database: str,
                                                                tmp_path: Path) -> None:
    rt = await runtime_on(old_database, tmp_path, FrozenClock(NOW))
    try:
        await at_0011_with_staff(rt)
        async with rt.engine.connect() as conn:
            before = {r.id: r for r in (await conn.execute(select(OLD_STAFF))).all()}
        await migrate.upgrade(rt.engine)

        def down(conn: Connection) -> None:
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            cfg.attributes[migrate.SEAL] = rt.destinations
            command.downgrade(cfg, "0011")

        async with rt.engine.begin() as conn:
            await conn.run_sync(down)
        async with rt.engine.connect() as conn:
            after = {r.id: r for r in (await conn.execute(select(OLD_STAFF.c.id,
                OLD_STAFF.c.password_hash, OLD_STAFF.c.totp_kid, OLD_STAFF.c.totp_ct,
                OLD_STAFF.c.totp_last_step))).all()}
        assert set(after) == {"s1", "s2"}
        for sid in after:
            assert after[sid].password_hash == before[sid].password_hash
            assert after[sid].totp_last_step == before[sid].totp_last_step
        sam = after["s1"]
        assert rt.keyring.decrypt(sam.totp_kid, sam.totp_ct, b"staff-totp:s1") == \
            SECRET.encode()
        assert after["s2"].totp_ct is None
    finally:
        await rt.engine.dispose()
