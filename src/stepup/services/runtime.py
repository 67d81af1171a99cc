"""The tools every service uses: the runtime, built once per process by the app factory,
and the user lookup that answers "No such user." the same way everywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from stepup import adapter
from stepup.adapter import Adapter
from stepup.config import ConfigurationError, Settings
from stepup.delivery.channels import Delivery
from stepup.domain.clock import Clock, SystemClock
from stepup.domain.errors import NotFound
from stepup.domain.hashing import Hasher
from stepup.domain.keyring import KeyRing, KeyRingError
from stepup.domain.sealing import HASH_KEY_LABEL, DestinationSeal
from stepup.methods.base import MethodContext
from stepup.store import migrate, queries
from stepup.store.db import (
    make_engine,
    make_read_first_sessionmaker,
    make_read_sessionmaker,
    make_sessionmaker,
)
from stepup.store.lifecycle import user_for_update
from stepup.store.models import STAFF_APP_ID, User

T = TypeVar("T")

log = logging.getLogger("stepup")


@dataclass(frozen=True)
class Actor:
    """Who is asking, for the audit log and the per-IP limits."""

    ip: str | None = None
    user_agent: str | None = None
    name: str = "user"
    # Calls of a portal (an app key): its app, and the address its own server called
    # from (never counted as a user's; kept for the audit log).
    app_id: str | None = None
    via_ip: str | None = None


# How many steps of nice the threads that hash run below the thread that started them:
# the lowest priority, as 10 left the unrelated write's p99 about twice as high. Raising
# one's own nice needs no privilege. Nice ranks threads within their autogroup or cgroup,
# usually StepUp's own processes: against other services the hashing keeps its share.
CPU_NICE = 19


class CpuPool:
    """Threads for CPU-heavy work (argon2), one per CPU by default: a flood of password
    checks queues here instead of starving the event loop (and every other request) of
    CPU. Each thread lowers its own priority (on Linux a thread has a nice value of its
    own), so a quick request that arrives mid-flood gets the CPU before the hashing does,
    and with nothing else to run the hashing has all of it. Threads of their own, not
    anyio's: those also send mail (delivery/smtp.py), which must not be slowed down.
    Measured in bench/README.md ("An unrelated write during a password flood")."""

    def __init__(self, size: int | None = None, nice: int = CPU_NICE) -> None:
        self.size = size or os.cpu_count() or 1
        self.nice = nice
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _threads(self) -> ThreadPoolExecutor:
        # Made on first use, by the process that uses it: a forked worker makes its own.
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="stepup-cpu",
                                                    initializer=self._lower_priority)
                self._pid = os.getpid()
            return self._executor

    def _lower_priority(self) -> None:
        # Elsewhere PRIO_PROCESS with a thread's id would name a process, or nothing.
        if sys.platform != "linux" or self.nice <= 0:
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid,
                           min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
        except OSError:
            pass  # not permitted here (a seccomp profile): the hashing keeps its priority

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads(), fn, *args)


_cpu = CpuPool()


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the process's CPU threads (``CpuPool``)."""
    return await _cpu.run(fn, *args)


async def user_or_not_found(db: AsyncSession, user_id: str, *, app_id: str | None = None,
                            staff: bool = True, for_update: bool = False) -> User:
    """The user with this id, else ``NotFound("No such user.")``. With ``app_id``, a user
    of another app is no user at all; with ``staff=False``, neither is a staff member
    (staff are not support's cases). Each refusal is the same error, so a caller cannot
    tell a missing account from one it may not see. ``for_update``: the row is held
    until commit (``store.lifecycle.user_for_update``)."""
    find = user_for_update if for_update else queries.get_user
    user = await find(db, user_id)
    if (user is None or (app_id is not None and user.app_id != app_id)
            or (not staff and user.app_id == STAFF_APP_ID)):
        raise NotFound("No such user.")
    return user


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    hasher: Hasher
    clock: Clock = field(default_factory=SystemClock)
    delivery: Delivery = field(init=False)
    read_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    read_first_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    # Method destinations (phones, e-mail addresses) at rest: sealed, opened, hashed.
    destinations: DestinationSeal = field(init=False)
    # The operator's overrides (STEPUP_ADAPTER): texts, issuer, QR code, policy hooks.
    adapter: Adapter = field(init=False)

    def __post_init__(self) -> None:
        self.adapter = adapter.load(self.settings)  # refuses to start on a bad class
        self.delivery = Delivery(self.settings, self.sessionmaker, self.clock)
        self.read_sessionmaker = make_read_sessionmaker(self.engine)
        self.read_first_sessionmaker = make_read_first_sessionmaker(self.engine)
        self.destinations = DestinationSeal(self.keyring,
                                            self.hasher.derive_key(HASH_KEY_LABEL))
        # A migration that meets destinations written in clear seals them with these.
        migrate.use_seal(self.engine, self.destinations)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        keyring_spec, secret = load_keys(settings)
        private_files(settings)
        try:
            keyring = KeyRing.parse(keyring_spec)
        except KeyRingError as exc:
            raise ConfigurationError(f"STEPUP_KEYRING: {exc}") from exc
        engine = make_engine(settings.effective_database_url, pool_size=settings.db_pool_size,
                             max_overflow=settings.db_max_overflow)
        hasher = Hasher(secret, time_cost=settings.argon2_time_cost,
                        memory_kib=settings.argon2_memory_kib,
                        parallelism=settings.argon2_parallelism)
        return cls(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                   keyring=keyring, hasher=hasher, clock=clock or SystemClock())

    def db(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session whose work is kept only if the caller commits it."""
        return _opened(self.sessionmaker)

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session that only reads and is never committed: on SQLite a deferred
        transaction, which takes no write lock. Read what a slow check needs here, close
        it, do the slow work with no transaction open, then write in ``db()``."""
        return _opened(self.read_sessionmaker)

    def read_first(self) -> AbstractAsyncContextManager[AsyncSession]:
        """``db()``, for a call that reads before it writes and writes what must hold
        still as compare-and-sets and counts (``apikeys.held``): on SQLite the write
        lock is taken at the first write, not at BEGIN (store/db.py)."""
        return _opened(self.read_first_sessionmaker)

    def method_context(self, db: AsyncSession, actor: Actor | None = None) -> MethodContext:
        return MethodContext(db=db, settings=self.settings, clock=self.clock,
                             keyring=self.keyring, hasher=self.hasher, run_cpu=run_cpu,
                             destinations=self.destinations, adapter=self.adapter,
                             ip=actor.ip if actor else None)


@asynccontextmanager
async def _opened(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session of ``sessions``, rolled back at the end unless the caller committed."""
    async with sessions() as session:
        try:
            yield session
        finally:
            # Detach first: objects handed back stay readable after the rollback.
            session.expunge_all()
            if session.in_transaction():
                await session.rollback()


# Paths already found too open and tightened (told once per process).
_tightened: set[Path] = set()


def private_files(settings: Settings) -> None:
    """Keep the data readable by the service's user alone.

    The process umask becomes at least 077 (for the whole process: ``serve``, ``migrate``
    and every command build a runtime first), so every file created from here on (the
    SQLite database and its -wal and -shm, the metrics files) is 0600 and every directory
    0700; the data directory is created 0700. An existing data directory, keys file or
    SQLite database that others could read is tightened, with a warning (once).
    """
    current = os.umask(0o077)
    os.umask(current | 0o077)
    db_file = _sqlite_file(settings.effective_database_url)
    # The data directory holds the development keys and the default database: made here
    # when either will live in it.
    uses_dir = not (settings.keyring and settings.secret_key) or (
        db_file is not None and db_file.parent == settings.data_dir.resolve())
    if uses_dir:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tighten(settings.data_dir, 0o700)
        _tighten(settings.data_dir / "keys.json", 0o600)
    if db_file is not None:
        for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
            _tighten(path, 0o600)


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_mode & 0o077 == 0:
        return
    os.chmod(path, mode)
    if path not in _tightened:
        _tightened.add(path)
        log.warning("%s was readable by other users (mode %o): now %o, the service's "
                    "user alone", path, st.st_mode & 0o777, mode)


def dev_keys_file(settings: Settings) -> Path:
    """The development keys file (services/rekey.py adds and removes ring keys in it)."""
    return settings.data_dir / "keys.json"


def load_keys(settings: Settings) -> tuple[str, bytes]:
    """The key ring and HMAC key: from settings, or (development) from the data dir.
    Key ids retired in the database are dropped later, by ``rekey.apply_retirements``
    when a process starts (reading them needs the database)."""
    if settings.keyring and settings.secret_key:
        return settings.keyring, _b64(settings.secret_key, "STEPUP_SECRET_KEY")
    if settings.is_production:
        settings.check_production()  # raises, naming what is missing
    path = dev_keys_file(settings)
    data = _read_or_create_dev_keys(path)
    keyring = settings.keyring or data["keyring"]
    secret = settings.secret_key or data["secret_key"]
    return keyring, _b64(secret, "secret_key")


def _read_or_create_dev_keys(path: Path) -> dict[str, str]:
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"keyring": KeyRing.generate_spec("dev1"),
            "secret_key": base64.b64encode(os.urandom(32)).decode()}
    # Created 0600 from the first byte: never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return data


def _b64(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not valid base64") from exc
    if len(raw) < 32:
        raise ConfigurationError(f"{name} must decode to at least 32 bytes")
    return raw
