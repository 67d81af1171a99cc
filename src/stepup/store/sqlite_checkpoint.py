"""Copying SQLite's write-ahead log back into the database off the write turn.

In WAL mode a commit appends the pages it changed to the ``-wal`` file; a checkpoint
copies them back into the database file and syncs both to disk. SQLite runs one itself
in the COMMIT that takes the log past 1,000 pages (its ``wal_autocheckpoint``). That
checkpoint takes no write lock, but it runs inside the committing call, so it ran while
the worker still held the writer's turn (store/sqlite_turn.py, given back once the
COMMIT returns) and with the worker's event loop stopped: measured with two workers at
eight clients, about one commit in ninety was a checkpoint of ~4 ms (two fsyncs), half of
all the time spent in COMMIT, every other writer and every request of that worker
waiting for it.

So the connections StepUp writes through turn SQLite's own checkpoint off
(``wal_autocheckpoint=0``, db.py) and each has a :class:`Checkpointer`: every ``EVERY``
commits (a verification writes six to eight pages: about the same 1,000 pages) it runs
``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own, on a thread of its own,
after the turn has been given back. A passive checkpoint waits for no reader and no
writer, and the thread waits for SQLite with the GIL released, so the workers go on
writing meanwhile. A checkpoint still running when the next is due is not doubled.

The log must also start again from its beginning now and then, or its file grows for as
long as writes go on. SQLite does that in the first write transaction that begins once
every page of the log is back in the database, which a checkpoint running beside the
writers never sees: they add pages while it copies. So every ``RESTART_EVERY``-th
checkpoint then takes the turn itself, just long enough to copy the pages added during
the first pass (a few dozen), and gives it back: the next transaction begins with the
whole log copied, and SQLite starts the log again. Other processes on the file (the
command line, a migration) keep SQLite's own checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future

from stepup.store.sqlite_turn import turn_file

# Commits between two checkpoints; checkpoints between two that let the log restart.
EVERY = 128
RESTART_EVERY = 8

# One thread per process does the checkpoints of all its databases (a worker has one).
# A daemon: a restart waiting for a turn that is never given back (a worker stopped
# mid-transaction) never keeps the process from exiting.
class _Thread:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[None], Callable[[], None]]] = (
            queue.SimpleQueue())
        threading.Thread(target=self._run, name="stepup-checkpoint", daemon=True).start()

    def submit(self, job: Callable[[], None]) -> Future[None]:
        done: Future[None] = Future()
        self._jobs.put((done, job))
        return done

    def _run(self) -> None:
        while True:
            done, job = self._jobs.get()
            try:
                job()
            except BaseException as exc:  # kept in its future, as an executor does
                done.set_exception(exc)
            else:
                done.set_result(None)


_thread_of_process: _Thread | None = None
_lock = threading.Lock()


def _thread() -> _Thread:
    global _thread_of_process
    with _lock:
        if _thread_of_process is None:
            _thread_of_process = _Thread()
        return _thread_of_process


class Checkpointer:
    """The checkpoints of one database file, for one writing connection."""

    def __init__(self, database: str) -> None:
        self._database = database
        # Used on the thread alone: its connection, its own hold on the turn file.
        self._conn: sqlite3.Connection | None = None
        self._turn_fd: int | None = None
        self._commits = 0
        self._checkpoints = 0
        self._running: Future[None] | None = None
        self._closed = False

    def committed(self) -> None:
        """A write transaction of the connection has ended (its turn given back)."""
        self._commits += 1
        if self._commits < EVERY or self._closed:
            return
        if self._running is not None and not self._running.done():
            return
        self._commits = 0
        self._checkpoints += 1
        restart = self._checkpoints % RESTART_EVERY == 0
        self._running = _thread().submit(lambda: self._checkpoint(restart))

    def _checkpoint(self, restart: bool) -> None:
        if self._closed:
            return
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._database, timeout=5,
                                             isolation_level=None, check_same_thread=False)
            self._pass()
            if restart:
                if self._turn_fd is None:
                    self._turn_fd = os.open(turn_file(self._database),
                                            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX)  # the writer's turn ends first
                try:
                    self._pass()
                finally:
                    fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
        except (sqlite3.Error, OSError) as exc:  # the next one tries again
            logging.getLogger("stepup").warning("SQLite checkpoint of %s failed: %s",
                                                self._database, exc)

    def _pass(self) -> None:
        assert self._conn is not None
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """No checkpoint after this one; the thread's connection and hold on the turn
        file are closed on the thread, after a checkpoint under way (not waited for)."""
        self._closed = True
        _thread().submit(self._close)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._turn_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._turn_fd)
            self._turn_fd = None
