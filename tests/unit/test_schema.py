"""The migrations build exactly the schema the models describe, on each database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from stepup.store import migrate
from stepup.store.db import make_engine
from stepup.store.models import Base


async def test_migrations_match_the_models(_schema: str) -> None:
    engine = make_engine(_schema)

    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_current(engine)
    await engine.dispose()
