"""``stepup serve --workers 2``: a burst of keep-alive connections is dealt evenly to
both workers, not taken whole by whichever worker woke first nor split by a hash; a
second service on the port is refused; a worker that dies is replaced and the service
goes on answering."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from stepup.web.workers import Supervisor, listening_socket
from tests.support.server import STEPUP, clean_env, free_port, serve, wait_until_up

CONNECTIONS = 32


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _workers(server: subprocess.Popen[bytes], count: int, gone: int = 0) -> list[int]:
    """The worker processes (multiprocessing's spawn children) once all are up and the
    one ``gone`` is not among them."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = []
        for pid in _children(server.pid):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    found.append(pid)
        if len(found) == count and gone not in found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"expected {count} workers, saw {found}")


def _established_on(port: int) -> set[int]:
    """Socket inodes of connections established to ``port`` (server side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(int(fields[9]))
    return inodes


def _sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


async def _open_connections(base: str) -> httpx.AsyncClient:
    """An httpx client holding CONNECTIONS keep-alive connections, opened at once."""
    http = httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(
        max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS))
    answers = await asyncio.gather(*(http.get("/healthz") for _ in range(CONNECTIONS)))
    assert all(r.status_code == 200 for r in answers)
    return http


def test_a_burst_of_connections_is_spread_and_a_dead_worker_replaced(tmp_path: Path) -> None:
    port = free_port()
    server, base = serve(tmp_path, clean_env(STEPUP_DATA_DIR=str(tmp_path / "data")),
                         port=port)
    try:
        assert wait_until_up(base), "stepup serve did not start"
        workers = _workers(server, 2)

        async def burst() -> list[int]:
            http = await _open_connections(base)
            try:
                established = _established_on(port)
                return [len(_sockets_of(pid) & established) for pid in workers]
            finally:
                await http.aclose()

        # A worker is dealt connections once its application has started; from then on,
        # in turn: half each, every time (the kernel's hash of SO_REUSEPORT split eight
        # connections 7 to 1 or worse about one time in fourteen).
        _even_spread(burst)
        for _ in range(3):
            assert asyncio.run(burst()) == [CONNECTIONS // 2] * 2

        # A second service on the same port is refused, not quietly given half the
        # connections (SO_REUSEPORT would share the port with it).
        second = subprocess.run(
            [*STEPUP, "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path,
            env=clean_env(STEPUP_DATA_DIR=str(tmp_path / "data2")), capture_output=True,
            text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr

        os.kill(workers[0], signal.SIGKILL)
        replaced = _workers(server, 2, gone=workers[0])
        assert workers[0] not in replaced and workers[1] in replaced
        asyncio.run(_all_answered(base))
        workers = replaced
        _even_spread(burst)  # the new worker dealt its half
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _even_spread(burst: Callable[[], Coroutine[Any, Any, list[int]]]) -> None:
    """Bursts until the workers are all started and dealt half each (30 s at most)."""
    deadline = time.monotonic() + 30
    while (spread := asyncio.run(burst())) != [CONNECTIONS // 2] * 2 \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert spread == [CONNECTIONS // 2] * 2


async def _all_answered(base: str) -> None:
    await (await _open_connections(base)).aclose()


def _dies_at_start(channel: socket.socket, options: dict[str, object]) -> None:
    raise SystemExit(3)


def test_workers_that_keep_dying_at_start_stop_the_service() -> None:
    # Not a restart loop for ever: after five failed starts in a row, exit status 1
    # (and systemd's Restart=on-failure, or the operator, takes it from there).
    supervisor = Supervisor(listening_socket("127.0.0.1", 0), 2, {}, target=_dies_at_start)
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < 60


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    server, base = serve(tmp_path, clean_env(STEPUP_DATA_DIR=str(tmp_path / "data")))
    try:
        assert wait_until_up(base), "stepup serve did not start"
        workers = _workers(server, 2)
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = [pid for pid in workers if _running(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "workers went on serving after their supervisor was killed"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
