"""A task cancelled just as SQLite's one connection is handed to it stops
(store/sqlite_pool.py ``handed_over``): with Python 3.11's ``asyncio.wait_for`` it
carried on with the cancellation dropped, and a background task stopped at shutdown ran
for ever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stepup.store.sqlite_pool import HandOffQueue, handed_over


async def test_a_cancel_in_the_turn_of_the_hand_over_is_kept() -> None:
    waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(handed_over(waiter, 30))
    await asyncio.sleep(0)  # the task waits
    waiter.set_result("connection")
    task.cancel()  # in the same turn of the loop
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_wait_past_its_timeout_is_a_timeout_and_leaves_the_waiter() -> None:
    waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await handed_over(waiter, 0.01)
    assert not waiter.done()


async def test_the_connection_given_up_goes_to_the_next_in_line() -> None:
    """Through the pool's queue (a greenlet, as SQLAlchemy calls it): the first waiter is
    cancelled as the connection reaches it; the second gets the connection."""
    from sqlalchemy.util import greenlet_spawn

    queue: HandOffQueue = HandOffQueue()
    got: list[Any] = []

    async def get() -> None:
        got.append(await greenlet_spawn(queue.get, True, 30))

    first = asyncio.create_task(get())
    await asyncio.sleep(0)
    second = asyncio.create_task(get())
    await asyncio.sleep(0)
    queue.put_nowait("connection")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)
    assert got == ["connection"]
