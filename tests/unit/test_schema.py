"""The migrations build exactly the schema the models describe, on each database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from stepup.domain.keyring import KeyRing
from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import Base, Method, Passkey, User


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
        await conn.execute(insert(User).values(id="u1", email="jane@example.com",
                                               created_at=now))
        await conn.execute(insert(Method).values(
            id="m1", user_id="u1", type="webauthn", status="enabled", protects={},
            secret_kid=kid, secret_ct=ct, last_step=7, created_at=now, enabled_at=now))
        await conn.run_sync(upgrade_to, "head")
    async with engine.connect() as conn:
        [passkey] = (await conn.execute(select(Passkey))).all()
        method = (await conn.execute(select(Method))).one()
    assert (passkey.id, passkey.method_id, passkey.sign_count) == ("m1", "m1", 7)
    assert json.loads(keyring.decrypt(passkey.secret_kid, passkey.secret_ct,
                                      b"webauthn:u1:m1")) == {"id": "Y3JlZA",
                                                              "public_key": "a2V5"}
    assert method.secret_ct is None and method.last_step is None
    await engine.dispose()
