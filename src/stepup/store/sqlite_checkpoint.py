"""SQLite's write-ahead log copied back into the database on a thread of its own, off the
write path.

SQLite keeps each commit in the write-ahead log (``<database>-wal``) and copies the log
back into the database file (a checkpoint) at the end of the commit that takes it past
``wal_autocheckpoint`` pages: about every 250 verifications, on the committing connection.
Here that connection runs on the worker's event loop and holds the write turn
(store/sqlite_turn.py), so every request of the worker and every transaction of the
other workers waited for the checkpoint: some thousand page writes and two fsyncs.
Measured with two workers on two cores (verify, 8 clients, 10k users): p99 18 ms with
those checkpoints, 10 ms without, at the same requests per second.

So a serving worker (``web/app.py``) runs ``Checkpointer.run_forever``: every 0.2 s a
PASSIVE checkpoint on a connection of its own, on a thread of its own (Python's
sqlite3 lets go of the GIL while SQLite works). PASSIVE copies every frame no
reader still needs, waits for no one and stops no writer; the log starts again from its
beginning at the next write once everything in it is copied. Two workers' checkpoints
never overlap: SQLite answers the second busy, and it tries again 0.2 s later.

A write only starts the log again if everything in it was copied when the write began.
Under a steady stream of writes whose pages are spread out (a million users: each
verification dirties pages of its own), a PASSIVE checkpoint never finishes ahead of the
next write, and the log grew until a commit's backstop copied it, on the event loop:
measured with strace (two workers, verify, 8 clients, 1M users), the loops synced the
database file 4 times in 10 s, up to 35 ms each, holding every request of their worker.
So once a PASSIVE round leaves the log past ``RESTART_PAGES``, the thread copies what came
in meanwhile (a second PASSIVE), takes the write turn (store/sqlite_turn.py: no worker
begins a write while it is held; theirs wait with their loops free) and runs a RESTART
checkpoint: the few frames left are copied, the readers still on the log are waited for
(``RESTART_WAIT_MS`` at most), and the next write starts the log from its beginning.
Measured as above: 2-4 ms of waiting for the writers, every few seconds, in place of the
loop's stalls.

The readers are waited for by asking again every ``RESTART_POLL_MS``, not by SQLite's
busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries. A read-first
transaction (store/db.py) reads outside the turn, so when the thread takes the turn there
may be readers on the log, done with it a millisecond later; the handler's sleeps would
keep the turn, and every worker's writes, waiting tens of milliseconds longer than they
need (a reader gone 55 ms into the wait was seen at 78 ms). A reader that begins once
the log is all copied reads the database file and is not waited for, so the wait ends
when the last reader that began before it does. A read-first transaction that wants to
write lets its snapshot go before it waits for the turn
(``InlineConnection.write_now``): were it to keep it, the RESTART would wait for it while
it waited for the RESTART, until ``RESTART_WAIT_MS`` ran out.

The serving connections still checkpoint at commit, as a backstop, once the log passes
``BACKSTOP_PAGES`` (``in_background``): should the thread fall behind (a disk slower than
the writes, readers that never let a RESTART through), the log stays bounded, only
further out. Commands (``migrate``, ``bench seed``) keep SQLite's default of 1,000 pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store.sqlite_connection import shared_file
from stepup.store.sqlite_turn import TurnTimeout, WriterTurn

log = logging.getLogger("stepup.store")

CHECKPOINT_SECONDS = 0.2
# About 40 MB of log (4 KiB pages, ten times SQLite's default): the thread starts the log
# again past it.
RESTART_PAGES = 10_000
# How long a RESTART waits for readers still on the log (then it answers busy, and a
# later round tries again), and the thread for the write turn: writers wait meanwhile.
RESTART_WAIT_MS = 100
# How often the RESTART asks again whether its readers left.
RESTART_POLL_MS = 0.5
TURN_WAIT_SECONDS = 1.0
# Four times that: commits checkpoint only if the thread cannot.
BACKSTOP_PAGES = 40_000


async def in_background(engine: AsyncEngine) -> Checkpointer | None:
    """The engine's connections, open and to come, checkpoint at commit only past
    ``BACKSTOP_PAGES``; the ``Checkpointer`` to run for them. ``None``: no file to
    checkpoint (PostgreSQL, a database in memory)."""
    path = shared_file(str(engine.url)) if engine.dialect.name == "sqlite" else None
    if path is None:
        return None
    event.listen(engine.sync_engine, "connect", _backstop)  # once however often called
    async with engine.connect() as conn:  # the pool's one connection, if already open
        await conn.run_sync(lambda sync: _backstop(sync.connection.dbapi_connection))
    return Checkpointer(path)


def _backstop(dbapi_conn: Any, _record: Any = None) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cur.close()


class Checkpointer:
    """Checkpoints of the database at ``path``, on a connection of its own: PASSIVE each
    round, RESTART under the write turn once the log is past ``restart_pages``."""

    def __init__(self, path: str, every: float = CHECKPOINT_SECONDS,
                 restart_pages: int = RESTART_PAGES) -> None:
        self.path = path
        self.every = every
        self.restart_pages = restart_pages
        self._conn: sqlite3.Connection | None = None
        self._turn: WriterTurn | None = None
        # One thread for all of it, so its calls run in the order given: a flock for the
        # turn that a round gave up on is given back right after it is got (sqlite_turn:
        # ``WriterTurn.wait``), never before it on another thread, with the turn then
        # kept from every worker.
        self._thread: ThreadPoolExecutor | None = None
        self.last: tuple[int, int, int] | None = None  # the last checkpoint's answer
        self.restarts = 0  # RESTART checkpoints that copied the whole log
        self._job: asyncio.Future[tuple[int, int, int]] | None = None  # the last on a thread

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Autocommit (no transaction held between checkpoints), busy answered at once.
            self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                         check_same_thread=False)
        return self._conn

    def _checkpoint(self, mode: str) -> tuple[int, int, int]:
        row = self._connection().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        return self.last

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (blocking: call it on a thread). SQLite's answer:
        (1 if another checkpoint was running, frames in the log, frames copied)."""
        return self._checkpoint("PASSIVE")

    def restart(self) -> tuple[int, int, int]:
        """One RESTART checkpoint (blocking; the caller holds the write turn): copies
        the whole log and waits for its readers, up to ``RESTART_WAIT_MS``, asking again
        every ``RESTART_POLL_MS`` (the connection's busy timeout is 0: a try with a
        reader left answers busy at once, the log copied already); answered as
        ``checkpoint``, busy if that wait ran out."""
        deadline = time.monotonic() + RESTART_WAIT_MS / 1000
        while True:
            answer = self._checkpoint("RESTART")
            if answer[0] == 0 or time.monotonic() >= deadline:
                break
            time.sleep(RESTART_POLL_MS / 1000)
        if answer[0] == 0:
            self.restarts += 1
        return answer

    def close(self) -> None:
        """Close the turn's file and the connection, after the calls already queued on
        the thread (a given-up flock and its give-back); the thread then ends."""
        if self._turn is not None:
            self._turn.close()  # queued on the thread
            self._turn = None
        conn, self._conn = self._conn, None
        thread, self._thread = self._thread, None
        if thread is None:
            if conn is not None:
                conn.close()
            return
        if conn is not None:
            thread.submit(conn.close)
        thread.shutdown(wait=False)

    def _run(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1,
                                              thread_name_prefix="stepup-checkpoint")
        return asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def round(self) -> None:
        """A PASSIVE checkpoint; past ``restart_pages``, the log started again. A
        checkpoint under way when cancelled runs on (on its thread) and is waited for
        by ``run_forever``."""
        busy, log, _ = await self._on_thread(self.checkpoint)
        if busy or log < self.restart_pages:
            return
        await self._on_thread(self.checkpoint)  # what came in meanwhile: less to copy held
        if self._turn is None:
            self._turn = WriterTurn(self.path, self._run)
        turn = self._turn
        try:
            await turn.wait(TURN_WAIT_SECONDS)
        except TurnTimeout:
            return  # writers kept it that long: a later round tries again
        try:
            await self._on_thread(self.restart)
        finally:
            job = self._job
            if job is None or job.done():
                turn.give_back()
            else:  # cancelled: the RESTART runs on, and gives the turn back once done
                job.add_done_callback(lambda _: turn.give_back())

    async def _on_thread(self, call: Callable[[], tuple[int, int, int]]
                         ) -> tuple[int, int, int]:
        self._job = self._run(call)
        return await asyncio.shield(self._job)

    async def run_forever(self) -> None:
        """A ``round`` every ``every`` seconds until cancelled; a checkpoint under way
        when cancelled is waited for, then the connection closed."""
        try:
            while True:
                await asyncio.sleep(self.every)
                try:
                    await self.round()
                except sqlite3.Error as exc:
                    # Busy or locked (a command rewriting the file): the next round will do.
                    log.debug("WAL checkpoint skipped: %s", exc)
                except Exception:  # anything else is logged, and the rounds go on
                    log.exception("WAL checkpoint failed")
                    self.close()  # the next round opens a fresh connection
        finally:
            job = self._job
            if job is not None and not job.done():
                with contextlib.suppress(Exception):
                    await job
            self.close()
