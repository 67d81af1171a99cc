"""Throwaway PostgreSQL clusters for the test suite.

The tests that exercise the real database run against a private cluster that
this module creates in a temporary directory and destroys afterwards, so they
never depend on (or damage) a PostgreSQL server configured on the machine.
Only the server binaries (``initdb``, ``pg_ctl``, ``createdb``) are needed;
``scripts/install-test-deps.sh`` installs them from Debian's ``postgresql``
package when they are missing.

Usage::

    with ThrowawayPostgres() as pg:
        engine = create_async_engine(pg.dsn_async)
        ...

The cluster trades durability for speed (``fsync=off`` and friends): its data
is thrown away anyway.  It listens on 127.0.0.1 only, on a free port picked at
start-up, so several clusters (e.g. parallel test workers) can run at once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "DB_NAME",
    "DB_PASSWORD",
    "DB_USER",
    "MISSING_BINARIES_MESSAGE",
    "ThrowawayPostgres",
    "find_pg_bin",
]

DB_USER = "stepup"
DB_PASSWORD = "stepup"
DB_NAME = "stepup"
HOST = "127.0.0.1"

MISSING_BINARIES_MESSAGE = (
    "PostgreSQL binaries not found: run scripts/install-test-deps.sh "
    "(installs Debian's postgresql package)"
)

# PostgreSQL refuses to run as root, so when the tests run as root the server
# runs as Debian's dedicated system account instead.
_UNPRIVILEGED_USER = "postgres"

# Picking a free port and binding it are two separate steps, so another
# process (often a parallel test worker) can take the port in between; a few
# retries with a fresh port make that race harmless.
_START_ATTEMPTS = 5
_PORT_IN_USE = re.compile(r"address already in use", re.IGNORECASE)

_COMMAND_TIMEOUT_S = 120
_LOG_TAIL_LINES = 40


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    PATH wins, so a developer can point the tests at another installation;
    otherwise the newest Debian ``/usr/lib/postgresql/<version>/bin`` is used
    (Debian keeps the server binaries off PATH).
    """
    initdb_on_path = shutil.which("initdb")
    if initdb_on_path is not None:
        # A PATH entry may be a lone symlink (e.g. /usr/local/bin/initdb);
        # the real directory also holds createdb from the same version.
        for candidate in (Path(initdb_on_path).resolve().parent, Path(initdb_on_path).parent):
            if _has_server_binaries(candidate):
                return candidate
    versioned = [
        path for path in Path("/usr/lib/postgresql").glob("*/bin") if _has_server_binaries(path)
    ]
    versioned.sort(key=lambda path: _version_key(path.parent.name), reverse=True)
    return versioned[0] if versioned else None


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version_key(name: str) -> tuple[int, ...]:
    # Numeric, so that 9.6 sorts below 10 and 15 below 16.
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(log file is empty)"


def _failure(
    what: str, result: subprocess.CompletedProcess[str], log_file: Path | None = None
) -> str:
    message = f"{what} (exit {result.returncode}):\n{result.stdout}{result.stderr}".rstrip()
    if log_file is not None:
        # The log is deleted with the cluster, so its tail goes in the message.
        message += f"\n--- last lines of the server log ---\n{_tail(log_file)}"
    return message


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    ``stop`` is idempotent and also runs at interpreter exit, so a cluster
    whose owner forgot (or failed) to stop it does not outlive the tests.
    """

    user: str = DB_USER
    password: str = DB_PASSWORD
    database: str = DB_NAME
    host: str = HOST

    def __init__(self, bin_dir: Path | None = None) -> None:
        self._bin_dir = bin_dir
        self._tmp_dir: Path | None = None
        self._port: int | None = None
        self._running = False
        # A forked child inherits this object and the atexit hook; only the
        # process that started the cluster may tear it down.
        self._owner_pid = os.getpid()

    # ------------------------------------------------------------------ API

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ThrowawayPostgres is not started")
        return self._port

    @property
    def dsn_async(self) -> str:
        """SQLAlchemy URL for the asyncpg driver."""
        return f"postgresql+asyncpg://{self._credentials()}"

    @property
    def dsn_sync_libpq(self) -> str:
        """Plain libpq URL (psql, psycopg, ``asyncpg.connect``)."""
        return f"postgresql://{self._credentials()}"

    @property
    def data_dir(self) -> Path:
        return self._require_tmp_dir() / "data"

    @property
    def log_file(self) -> Path:
        return self._require_tmp_dir() / "postgres.log"

    @property
    def is_running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Create the cluster, start the server and create the database."""
        if self._tmp_dir is not None:
            raise RuntimeError("ThrowawayPostgres is already started")
        bin_dir = self._bin_dir or find_pg_bin()
        if bin_dir is None or not _has_server_binaries(bin_dir):
            raise RuntimeError(MISSING_BINARIES_MESSAGE)
        self._bin_dir = bin_dir
        run_as = self._unprivileged_account()
        self._owner_pid = os.getpid()
        # Registered before anything exists on disk so that an interrupted
        # start is cleaned up too.
        atexit.register(self.stop)
        # Under /tmp rather than the default TMPDIR: the unprivileged account
        # cannot traverse /root, and the socket path must stay short.
        self._tmp_dir = Path(tempfile.mkdtemp(prefix="stepup-pg-", dir="/tmp"))
        try:
            if run_as is not None:
                os.chown(self._tmp_dir, run_as.pw_uid, run_as.pw_gid)
            self._initdb(run_as)
            self._start_server(run_as)
            self._createdb(run_as)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (immediately) and delete its files. Idempotent."""
        tmp_dir = self._tmp_dir
        if tmp_dir is None or os.getpid() != self._owner_pid:
            return
        if self._running or (tmp_dir / "data" / "postmaster.pid").exists():
            self._stop_server()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        self._tmp_dir = None
        self._port = None
        self._running = False
        atexit.unregister(self.stop)

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ internals

    def _credentials(self) -> str:
        return f"{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def _require_tmp_dir(self) -> Path:
        if self._tmp_dir is None:
            raise RuntimeError("ThrowawayPostgres is not started")
        return self._tmp_dir

    def _require_bin_dir(self) -> Path:
        if self._bin_dir is None:
            raise RuntimeError(MISSING_BINARIES_MESSAGE)
        return self._bin_dir

    @staticmethod
    def _unprivileged_account() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(_UNPRIVILEGED_USER)
        except KeyError:
            raise RuntimeError(
                "PostgreSQL refuses to run as root and there is no "
                f"{_UNPRIVILEGED_USER!r} system user to run it as: "
                "run scripts/install-test-deps.sh (installs Debian's postgresql "
                "package, which creates that user) or run the tests as a normal user"
            ) from None

    def _env(self) -> dict[str, str]:
        # Inherited PG* variables (PGHOST, PGDATA, PGPASSFILE, ...) would
        # redirect the tools to some other server or cluster.  A C locale
        # keeps the log messages in English for the port-in-use check, and
        # HOME points at our directory so no user's ~/.pgpass or ~/.psqlrc
        # gets involved.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        env["HOME"] = str(self._require_tmp_dir())
        return env

    def _run(
        self,
        argv: Sequence[str],
        run_as: pwd.struct_passwd | None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = self._env()
        if extra_env:
            env.update(extra_env)
        if run_as is None:
            return subprocess.run(
                list(argv),
                cwd=self._require_tmp_dir(),
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
            )
        return subprocess.run(
            list(argv),
            cwd=self._require_tmp_dir(),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
            user=run_as.pw_uid,
            group=run_as.pw_gid,
            # Otherwise root's supplementary groups (gid 0) would stay.
            extra_groups=[],
        )

    def _initdb(self, run_as: pwd.struct_passwd | None) -> None:
        tmp_dir = self._require_tmp_dir()
        pwfile = tmp_dir / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if run_as is not None:
            os.chown(pwfile, run_as.pw_uid, run_as.pw_gid)
        pwfile.chmod(0o600)
        result = self._run(
            [
                str(self._require_bin_dir() / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            run_as,
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(_failure("initdb failed", result))

    def _start_server(self, run_as: pwd.struct_passwd | None) -> None:
        tmp_dir = self._require_tmp_dir()
        last_failure = ""
        for _ in range(_START_ATTEMPTS):
            port = _free_loopback_port()
            self.log_file.unlink(missing_ok=True)
            options = (
                f"-h {HOST} -p {port} -k {tmp_dir}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=200"
            )
            result = self._run(
                [
                    str(self._require_bin_dir() / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                ],
                run_as,
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            last_failure = _failure(f"pg_ctl start failed on port {port}", result, self.log_file)
            # A server that timed out may still be coming up; never leave it.
            self._stop_server()
            if not _PORT_IN_USE.search(_tail(self.log_file)):
                break
        raise RuntimeError(last_failure)

    def _createdb(self, run_as: pwd.struct_passwd | None) -> None:
        bin_dir = self._require_bin_dir()
        createdb = bin_dir / "createdb"
        if not os.access(createdb, os.X_OK):
            on_path = shutil.which("createdb")
            if on_path is None:
                raise RuntimeError(MISSING_BINARIES_MESSAGE + " (createdb is missing)")
            createdb = Path(on_path)
        # Over TCP with the password, which also proves the credentials the
        # tests will use actually work.
        result = self._run(
            [
                str(createdb),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-O",
                self.user,
                "--no-password",
                self.database,
            ],
            run_as,
            extra_env={"PGPASSWORD": self.password},
        )
        if result.returncode != 0:
            raise RuntimeError(_failure("createdb failed", result, self.log_file))

    def _stop_server(self) -> None:
        tmp_dir = self._tmp_dir
        if tmp_dir is None or self._bin_dir is None:
            return
        run_as = self._unprivileged_account()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self._run(
                [
                    str(self._bin_dir / "pg_ctl"),
                    "stop",
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                    "-D",
                    str(self.data_dir),
                ],
                run_as,
            )
        # If pg_ctl could not do it (hung, binaries gone), kill the
        # postmaster named in its pid file so no server outlives the tests.
        self._kill_leftover_postmaster()
        self._running = False

    def _kill_leftover_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text(encoding="utf-8").splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        # A stale pid file may name a pid since reused by something else;
        # only a postmaster started on this data directory gets signalled.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if str(self.data_dir).encode() not in cmdline:
            return
        try:
            # SIGQUIT is PostgreSQL's "immediate shutdown": the postmaster
            # takes its children down with it.
            os.kill(pid, signal.SIGQUIT)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
