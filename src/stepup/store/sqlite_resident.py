"""The SQLite database file kept in memory while ``stepup serve`` runs: a read-only
shared mapping of it, held by the serving process.

SQLite has no buffer pool shared by the workers: each connection keeps a page cache of
its own, which it drops whenever another worker wrote (almost every transaction, with
two workers writing), and reads its pages again from the operating system's page cache.
So the kernel's cache is SQLite's buffer pool, and where the kernel takes it away, a
verification waits for the disk. PostgreSQL's buffers are shared memory that its
processes map; a host's reclaim that spares mapped memory spares them.

Such reclaim exists: the machines StepUp is measured on run DAMON's ``pageout`` scheme
(``/sys/kernel/mm/damon/admin``), which pages out file cache that no process maps and
that was touched in at most one of ten samples for a minute, with 22 GB of memory free.
A million users' pages, each read every minute or two, are "cold" to it: 1.1 GB of
database kept 334–580 MB in the cache, and a verification read ~0.9 pages from the disk
(bench/README.md, "What is left is not ours: the host pages out file cache").

``Resident`` maps the file (``MAP_SHARED``, read only, ``MAP_POPULATE``: each page is read
once and entered in this process's page table), and every ``REFRESH_SECONDS`` what the
file grew by. The pages are the page cache's own, the ones SQLite
reads and writes: nothing is copied and nothing is read through the mapping afterwards.
They stay reclaimable (no ``mlock``): under real memory pressure the kernel may still
take them, and then they come back from the disk as before.

Only a process that runs no SQLite connection to the file may hold it: SQLite's locks
are POSIX advisory locks, which belong to the process, and closing *any* descriptor of
the file drops all of them (SQLite's "How To Corrupt An SQLite Database File", 2.2), and
a refresh closes descriptors (its own, and the one Python's ``mmap`` keeps beside each
mapping). Seen, not assumed: held in a single worker's own process, the guide's webhook
step (tests/docs) failed, the app's URL that ``stepup app set`` had just written not
there for the server; a command that sees no other connection's lock takes the file for
itself as it closes (in WAL mode, to checkpoint and remove the log). So
``serve`` holds the file in its supervisor, which deals the connections to the workers
and opens no database, and ``start`` refuses in a process that has the file open.

At most ``sqlite_resident_mb`` megabytes are held (the first ones of the file), and never
more than half the machine's memory; ``STEPUP_SQLITE_RESIDENT_MB=0`` turns it off. The
supervisor shows the mapping in its resident size (``RssFile``): memory shared with
every reader of the file, not private to it; a worker's own size stays what it was.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import threading
from pathlib import Path

log = logging.getLogger("stepup.sqlite")

# Python's mmap keeps a descriptor of the file beside each mapping, and holds the GIL
# while mmap() populates it. The file is mapped whole as serve starts (before the
# workers), then what it grew by, a mapping each refresh; past MAX_MAPS mappings they are
# replaced by one of the whole file, whose pages are in the cache: the thread then stops
# the supervisor's loop (which deals the connections) for ~55 ms a GB (the benchmark host
# mapped 400 MB in 22 ms from the cache, and in 809 ms once paged out).
MAX_MAPS = 16
REFRESH_SECONDS = 30.0


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _opened_here(path: Path) -> bool:
    """Whether a descriptor of this process refers to ``path``'s file (True where that
    cannot be told: no ``/proc``)."""
    try:
        wanted = path.stat()
    except OSError:
        return False
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return True
    for fd in descriptors:
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if (st.st_dev, st.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    return False


class Resident:
    """Holds up to ``limit_bytes`` of the file at ``path`` mapped and populated."""

    def __init__(self, path: str | Path, limit_bytes: int) -> None:
        self.path = Path(path)
        memory = _memory_bytes()
        self.limit = min(limit_bytes, memory // 2) if memory else limit_bytes
        self._maps: list[mmap.mmap] = []  # from the file's start, each on the last
        self._held = 0  # bytes of the file mapped, from its start
        self._file: tuple[int, int] | None = None  # (device, inode) they map
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> int:
        """Map what the file grew by since the last call (all of it the first time, or
        when it was replaced or shrank); answers the bytes held."""
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._file and min(st.st_size, self.limit) == self._held:
                return self._held  # nothing new: no descriptor opened (or closed)
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # gone
            self._release()
            return 0
        try:
            st = os.fstat(fd)
            want = min(st.st_size, self.limit)
            if self._file != (st.st_dev, st.st_ino) or want < self._held:
                self._release()
            if want > self._held:
                start = 0 if len(self._maps) >= MAX_MAPS else (
                    self._held - self._held % mmap.ALLOCATIONGRANULARITY)
                mapping = mmap.mmap(fd, want - start, offset=start, prot=mmap.PROT_READ,
                                    flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
                if start == 0:
                    self._release()
                self._maps.append(mapping)
            self._held, self._file = want, (st.st_dev, st.st_ino)
        except (OSError, ValueError) as exc:  # ENOMEM, a file cut short meanwhile …
            log.warning("Could not keep %s in memory: %s", self.path, exc)
        finally:
            os.close(fd)
        return self._held

    def start(self, interval: float = REFRESH_SECONDS) -> int:
        """Map the file now and keep up with its growth on a daemon thread; answers the
        bytes held."""
        if self.limit <= 0:
            return 0
        if _opened_here(self.path):
            log.warning("Not keeping %s in memory: this process has it open, and a close "
                        "of it would drop SQLite's locks", self.path)
            return 0
        held = self.refresh()
        self._thread = threading.Thread(target=self._run, args=(interval,),
                                        name="stepup-resident", daemon=True)
        self._thread.start()
        return held

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._release()

    def _release(self) -> None:
        for mapping in self._maps:
            with contextlib.suppress(BufferError):
                mapping.close()
        self._maps, self._held, self._file = [], 0, None
