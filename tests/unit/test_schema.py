"""The migrations build exactly the schema the models describe, on each database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, insert, select, table, text
from sqlalchemy.engine import Connection

from stepup.domain.keyring import KeyRing
from stepup.domain.sealing import DestinationSeal
from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import Base, Method, Passkey

# The users table as the migrations before 0007 left it (no app).
OLD_USERS = table("users", column("id"), column("email"), column("email_verified"),
                  column("phone_verified"), column("verification_grade"), column("language"),
                  column("created_at"))
# The methods table as the migrations before 0009 left it (the destination in clear).
OLD_METHODS = table("methods", column("id"), column("user_id"), column("type"),
                    column("status"), column("protects"), column("destination"),
                    column("created_at"), column("enabled_at"))


def a_seal() -> DestinationSeal:
    return DestinationSeal(KeyRing.parse(KeyRing.generate_spec()), b"h" * 32)


async def test_migrations_match_the_models(_schema: str) -> None:
    engine = make_engine(_schema)

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_current(engine)
    await engine.dispose()


async def test_a_passkey_made_before_0006_moves_to_the_passkeys_table(tmp_path: Path) -> None:
    # Before 0006 a passkey lived on its method row, sealed for (user, method id); the
    # migration gives it that id in the passkeys table, so the seal still opens.
    from alembic import command

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")

    def upgrade_to(conn: Connection, revision: str) -> None:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade_to, "0005")
    keyring = KeyRing.parse(KeyRing.generate_spec())
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    sealed = json.dumps({"id": "Y3JlZA", "public_key": "a2V5"}).encode()
    kid, ct = keyring.encrypt(sealed, b"webauthn:u1:m1")
    async with engine.begin() as conn:
        await conn.execute(insert(OLD_USERS).values(
            id="u1", email="jane@example.com", email_verified=False, phone_verified=False,
            verification_grade=0, language="en", created_at=now))
        await conn.execute(insert(Method).values(
            id="m1", user_id="u1", type="webauthn", status="enabled", protects={},
            secret_kid=kid, secret_ct=ct, last_step=7, created_at=now, enabled_at=now))
        await conn.run_sync(upgrade_to, "0006")
    await migrate.upgrade(engine)
    async with engine.connect() as conn:
        [passkey] = (await conn.execute(select(Passkey))).all()
        method = (await conn.execute(select(Method))).one()
    assert (passkey.id, passkey.method_id, passkey.sign_count) == ("m1", "m1", 7)
    assert json.loads(keyring.decrypt(passkey.secret_kid, passkey.secret_ct,
                                      b"webauthn:u1:m1")) == {"id": "Y3JlZA",
                                                              "public_key": "a2V5"}
    assert method.secret_ct is None and method.last_step is None
    await engine.dispose()


async def test_0007_puts_every_user_and_key_in_an_app_and_loses_nothing(
        tmp_path: Path) -> None:
    # Users made through an API key (their account.created names an app: actor) and the
    # app keys move to the app "default"; people who signed up on the pages to "portal".
    # The users table is rebuilt on SQLite: nothing that references a user may be lost.
    from alembic import command

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")

    def upgrade_to(conn: Connection, revision: str) -> None:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade_to, "0006")
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    old = {"email_verified": False, "phone_verified": False, "verification_grade": 0,
           "language": "en", "created_at": now}
    async with engine.begin() as conn:
        await conn.execute(insert(OLD_USERS).values(id="self", email="jane@example.com",
                                                    **old))
        await conn.execute(insert(OLD_USERS).values(id="made", email="bob@example.com",
                                                    **old))
        for user, actor in (("self", "user"), ("made", "app:k1")):
            await conn.execute(text(
                "INSERT INTO audit_events (user_id, actor, event, data, created_at) "
                "VALUES (:u, :a, 'account.created', '{}', :t)"), {"u": user, "a": actor,
                                                                   "t": now})
        await conn.execute(insert(OLD_METHODS).values(
            id="m1", user_id="self", type="totp", status="enabled", protects="{}",
            created_at=now, enabled_at=now))
        await conn.execute(insert(OLD_METHODS).values(
            id="m2", user_id="made", type="sms", status="enabled", protects="{}",
            destination="+447700900123", created_at=now, enabled_at=now))
        await conn.execute(text(
            "INSERT INTO api_keys (id, name, role, key_hash, scopes, rate_per_minute, "
            "created_at) VALUES ('k1', 'portal', 'app', x'00', '[]', 60, :t), "
            "('k2', 'desk', 'support', x'01', '[]', 60, :t)"), {"t": now})
    await migrate.upgrade(engine, a_seal())
    async with engine.connect() as conn:
        apps = dict((await conn.execute(text("SELECT name, id FROM apps"))).all())
        users = dict((await conn.execute(text("SELECT id, app_id FROM users"))).all())
        keys = dict((await conn.execute(text("SELECT id, app_id FROM api_keys"))).all())
        methods = (await conn.execute(text("SELECT id FROM methods ORDER BY id"))).scalars()
        assert list(methods) == ["m1", "m2"]
        fk = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
    assert set(apps) == {"portal", "default"}
    assert users == {"self": "portal", "made": apps["default"]}
    assert keys == {"k1": apps["default"], "k2": None}
    assert fk == 1  # foreign keys are back on for the connections that follow
    await engine.dispose()


async def test_the_new_device_check_reads_only_the_origin_events(_schema: str) -> None:
    # A login reads the account's logins and sign-up since a date; through the user_id
    # index it read the account's whole history (every verification) to find them. The
    # plan must go through the partial index of those events, whatever the account's
    # other events: on each database, in a transaction rolled back.
    from stepup.store.audit import _ORIGINS
    from stepup.store.models import AuditEvent

    engine = make_engine(_schema)
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    rows = [{"user_id": "u-history", "actor": "app:k", "event": event, "ip": "203.0.113.7",
             "user_agent": "curl", "data": {}, "created_at": now}
            for event in ["code.verified"] * 2000 + ["login.succeeded"]]
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(insert(AuditEvent), rows)
        postgres = conn.dialect.name == "postgresql"
        await conn.exec_driver_sql("ANALYZE audit_events")
        compiled = _ORIGINS.compile(dialect=conn.dialect)
        values = {"user_id": "u-history", "since": now, "limit": 1000}
        params = tuple(compiled.construct_params(values)[name]
                       for name in compiled.positiontup or ())
        if postgres:
            # A table this small might be read whole: the index must serve, and in
            # the generic plan a prepared statement (asyncpg's) ends up with, where
            # a parameter's value is not known.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.exec_driver_sql(f"PREPARE origins AS {compiled}")
            args = ", ".join(str(v) if isinstance(v, int) else
                             f"'{v.isoformat() if isinstance(v, datetime) else v}'"
                             for v in params)
            explained = await conn.exec_driver_sql(f"EXPLAIN EXECUTE origins({args})")
            await conn.exec_driver_sql("DEALLOCATE origins")
        else:
            explained = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}",
                                                   params)
        plan = " ".join(str(r[-1]) for r in explained)
        found = (await conn.exec_driver_sql(str(compiled), params)).all()
        await transaction.rollback()
    await engine.dispose()
    assert "ix_audit_events_origins" in plan, plan
    assert [tuple(r) for r in found] == [("203.0.113.7", "curl")]


async def test_the_origins_index_built_beforehand_as_the_upgrade_notes_say(
        _schema: str) -> None:
    # docs/deployment.md ("Upgrades"): on a large PostgreSQL audit table the operator
    # builds 0016's index concurrently while the old version serves, then migrates.
    import re

    from alembic import command

    engine = make_engine(_schema)
    if engine.dialect.name != "postgresql":
        await engine.dispose()
        pytest.skip("the upgrade note's statement is PostgreSQL's")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deployment.md").read_text()
    [block] = [b for b in re.findall(r"```sql\n(.*?)```", doc, re.S)
               if "ix_audit_events_origins" in b]

    def migrate_from_0015(conn: Connection) -> None:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "0015")
        command.upgrade(cfg, "head")

    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("DROP INDEX ix_audit_events_origins")
            await conn.exec_driver_sql(block)
        async with engine.begin() as conn:
            await conn.run_sync(migrate_from_0015)  # finds the index made: no error
            [definition] = (await conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_audit_events_origins'"
            ))).scalars().all()
        assert await migrate.is_current(engine)
    finally:
        await engine.dispose()
    assert "(user_id, created_at)" in definition
    assert "'login.succeeded'" in definition and "'account.created'" in definition
