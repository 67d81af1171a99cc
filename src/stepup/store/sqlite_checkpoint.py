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
PASSIVE checkpoint on a connection of its own, on a thread of the default executor
(Python's sqlite3 lets go of the GIL while SQLite works). PASSIVE copies every frame no
reader still needs, waits for no one and stops no writer; the log starts again from its
beginning at the next write once everything in it is copied. Two workers' checkpoints
never overlap: SQLite answers the second busy, and it tries again 0.2 s later.

The serving connections still checkpoint at commit, as a backstop, once the log passes
``BACKSTOP_PAGES`` (``in_background``): should the thread fall behind (a disk slower than
the writes), the log stays bounded, as before, only further out. Commands (``migrate``,
``bench seed``) keep SQLite's default of 1,000 pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from stepup.store.db import shared_file

log = logging.getLogger("stepup.store")

CHECKPOINT_SECONDS = 0.2
# About 40 MB of log (4 KiB pages): ten times SQLite's default.
BACKSTOP_PAGES = 10_000


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
    """PASSIVE checkpoints of the database at ``path``, on a connection of its own."""

    def __init__(self, path: str, every: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.every = every
        self._conn: sqlite3.Connection | None = None
        self.last: tuple[int, int, int] | None = None  # the last checkpoint's answer

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (blocking: call it on a thread). SQLite's answer:
        (1 if another checkpoint was running, frames in the log, frames copied)."""
        if self._conn is None:
            # Autocommit (no transaction held between checkpoints), busy answered at once.
            self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                         check_same_thread=False)
        row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.last = (int(row[0]), int(row[1]), int(row[2]))
        return self.last

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def run_forever(self) -> None:
        """Checkpoint every ``every`` seconds until cancelled; a checkpoint under way
        when cancelled is waited for, then the connection closed."""
        loop = asyncio.get_running_loop()
        job: asyncio.Future[tuple[int, int, int]] | None = None
        try:
            while True:
                await asyncio.sleep(self.every)
                job = loop.run_in_executor(None, self.checkpoint)
                try:
                    await asyncio.shield(job)
                except sqlite3.Error as exc:
                    # Busy or locked (a command rewriting the file): the next round will do.
                    log.debug("WAL checkpoint skipped: %s", exc)
                except Exception:  # anything else is logged, and the rounds go on
                    log.exception("WAL checkpoint failed")
                    self.close()  # the next round opens a fresh connection
        finally:
            if job is not None and not job.done():
                with contextlib.suppress(Exception):
                    await job
            self.close()
