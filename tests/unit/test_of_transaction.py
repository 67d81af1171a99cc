"""``store.db.of_transaction``: what one transaction keeps about its own locks and
checks (a right code's hold, the chain heads it took) lives exactly as long as it."""

from __future__ import annotations

import gc

from sqlalchemy import text
from sqlalchemy.orm import Session, SessionTransaction

from stepup.services.runtime import Runtime
from stepup.store.db import of_transaction


async def test_kept_for_the_transaction_and_gone_at_its_end(runtime: Runtime) -> None:
    async with runtime.db() as db:
        await db.execute(text("SELECT 1"))
        of_transaction(db)["held"] = 1
        await db.execute(text("SELECT 2"))
        assert of_transaction(db) == {"held": 1}  # the same transaction: kept
        await db.commit()
        await db.execute(text("SELECT 1"))
        assert of_transaction(db) == {}  # the next one starts empty
        of_transaction(db)["held"] = 2
        await db.rollback()
        await db.execute(text("SELECT 1"))
        assert of_transaction(db) == {}


async def test_nothing_begun_keeps_nothing(runtime: Runtime) -> None:
    async with runtime.db() as db:
        of_transaction(db)["held"] = 1
        assert of_transaction(db) == {}


async def test_a_session_is_freed_without_the_cyclic_collector(runtime: Runtime) -> None:
    """The transaction is held weakly: held strongly, the session's ``info`` and the
    transaction would make a cycle, and every session would wait for the collector."""
    gc.collect()
    gc.disable()
    try:
        async with runtime.db() as db:
            await db.execute(text("SELECT 1"))
            of_transaction(db)["held"] = 1
            await db.commit()
        gc.collect()  # anything of before
        async with runtime.db() as db:
            await db.execute(text("SELECT 1"))
            of_transaction(db)["held"] = 1
            await db.commit()
        del db
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds, kept to look at
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, Session | SessionTransaction)]
        assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
