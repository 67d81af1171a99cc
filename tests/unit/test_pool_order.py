"""SQLite's one connection goes to requests in the order they asked for it: one that
asks just as it comes back waits behind those already waiting (store/db.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from stepup.store.db import make_engine


async def test_a_returned_connection_goes_to_the_longest_waiter(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    order: list[str] = []

    async def take(name: str) -> None:
        async with engine.connect():
            order.append(name)

    try:
        holder = await engine.connect()  # the one connection
        first = asyncio.create_task(take("first"))
        second = asyncio.create_task(take("second"))
        await asyncio.sleep(0.05)  # both wait in line
        assert order == []
        await holder.close()  # back to the pool: "first" has waited longest …
        await take("late")  # … and this one asks at once, without a turn of the loop
        await asyncio.gather(first, second)
        assert order == ["first", "second", "late"]
    finally:
        await engine.dispose()


async def test_a_waiter_that_gives_up_passes_the_connection_on(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cancel.db'}")
    try:
        holder = await engine.connect()
        async def wait_in_line() -> None:
            async with engine.connect():
                raise AssertionError("cancelled before its turn")

        gives_up = asyncio.create_task(wait_in_line())
        await asyncio.sleep(0.05)
        gives_up.cancel()
        await holder.close()
        # The cancelled waiter left the line: the connection is free for the next one.
        async with engine.connect() as conn:
            assert not conn.closed
        assert gives_up.cancelled()
    finally:
        await engine.dispose()
