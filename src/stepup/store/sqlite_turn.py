"""Whose turn it is to write: a first-come queue for SQLite's one writer across worker
processes.

SQLite lets one connection write at a time; a worker that finds the write lock taken
cannot be told when it is free, so it asks again after a pause (store/sqlite_connection.py,
``_wait_for_writer``). The worker that just committed asks again at once, with no pause,
and so takes the lock back ahead of one that has been waiting: measured with two SQLite
workers (bench/cpu.py --workers 2), verify did 802 requests/s at c = 8 against 793 for
one worker, because one worker's transactions followed each other while the other's
waited.

A turn is an exclusive ``flock`` on a file beside the database, taken before
``BEGIN IMMEDIATE`` and given back once the transaction ends. A worker whose turn is
taken waits in the kernel (on its connection's helper thread, the event loop running
its other requests meanwhile), and the kernel wakes it the moment the holder gives the
turn back, before that holder can start its next transaction. So while one worker
writes, the other runs the parts of its requests that need no lock, and the two cores
are both used.

The turn orders workers; it guards nothing. ``BEGIN IMMEDIATE`` is still asked and
waited for after it, so a process that takes no turn (a command-line tool, an older
version) is locked out exactly as before, and a turn that is lost or mixed up (a
cancelled wait, below) can only cost waiting, never a second writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable
from typing import Any


class TurnTimeout(Exception):
    """The turn was not free in time."""


class WriterTurn:
    """The turn of one connection (a worker has one) on one database file.

    ``run_blocking``: runs a blocking call on a thread of the connection's own and
    awaits it (aiosqlite's helper thread: one per connection, a daemon, its calls run
    in the order given). One thread, in order, is required: a wait given up on queues
    its give-back behind its flock, and on a pool the give-back could run first and
    leave the turn taken (the checkpointer has a thread of its own for this)."""

    def __init__(self, database: str,
                 run_blocking: Callable[[Callable[[], Any]], asyncio.Future[Any]]) -> None:
        self._fd = os.open(f"{database}-turn", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._run_blocking = run_blocking
        self.held = False

    def try_take(self) -> bool:
        """Take the turn if it is free (at once, without waiting)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.held = True
        return True

    async def wait(self, seconds: float) -> None:
        """Wait for the turn and hold it; ``TurnTimeout`` after ``seconds``."""
        fd = self._fd
        waiting = self._run_blocking(lambda: fcntl.flock(fd, fcntl.LOCK_EX))
        try:
            async with asyncio.timeout(seconds):  # not wait_for: see sqlite_pool.handed_over
                await asyncio.shield(waiting)
        except BaseException as exc:
            # Cancelled, or waited too long: the helper thread still takes the turn
            # once it is free, and gives it straight back.
            self._run_blocking(lambda: fcntl.flock(fd, fcntl.LOCK_UN))
            if isinstance(exc, TimeoutError):
                raise TurnTimeout("another worker held the database's write turn "
                                  f"for over {seconds:g} s") from None
            raise
        self.held = True

    def give_back(self) -> None:
        """End the turn (at the end of a transaction); nothing if it is not held."""
        if self.held:
            self.held = False
            self._give_back()

    def _give_back(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the turn's file: on the helper thread, after the calls queued there
        before (a cancelled wait's flock and its give-back, which may run long after the
        wait gave up), so that none of them can find the descriptor closed, or its
        number already given to another file. The connection's close waits for that
        thread to finish its queue."""
        self.held = False
        fd, self._fd = self._fd, -1
        if fd < 0:
            return

        def shut() -> None:
            with contextlib.suppress(OSError):
                os.close(fd)

        try:
            self._run_blocking(shut)
        except RuntimeError:  # no event loop: nothing queued can run any more
            shut()
