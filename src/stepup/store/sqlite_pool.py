"""SQLite's pool: one connection per worker, handed to the requests in the order they
asked for it (store/db.py ``make_engine``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


class HandOffQueue(AsyncAdaptedQueue[Any]):
    """The pool's queue, first come first served: a returned connection goes straight to
    the request that has waited longest.

    SQLAlchemy's asyncio queue hands a free connection to whoever asks first, so a
    request that asks just as the connection comes back takes it ahead of requests that
    have been waiting, and with SQLite's one connection a waiter can be passed over
    again and again (the long tails at 32 clients in bench/README.md)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiting: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # the pool never holds more than it made: never full

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()
        if not self._waiting:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        if not block:
            raise Empty()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await_(handed_over(waiter, timeout))
        except BaseException as exc:  # a timeout, or the request was cancelled
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed over as we gave up: pass it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise Empty() from exc
            raise


async def handed_over(waiter: asyncio.Future[Any], seconds: float | None) -> Any:
    """``waiter``'s result, within ``seconds`` (``TimeoutError``), ``waiter``
    left running if given up. Not ``asyncio.wait_for``: on Python 3.11 it returns the
    result, and drops the cancellation, when the task is cancelled in the same turn of
    the loop as ``waiter`` completes: a background task stopped at shutdown just as it
    was handed the connection went on for ever, and the shutdown waited for it."""
    async with asyncio.timeout(seconds):
        return await asyncio.shield(waiter)


class FirstComeFirstServedPool(AsyncAdaptedQueuePool):
    """SQLite's pool of one connection, served in the order requests asked for it."""

    _queue_class = HandOffQueue
