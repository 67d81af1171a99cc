"""``stepup serve --workers N``: N worker processes, each accepting on a socket of its own.

uvicorn's own ``--workers`` shares one listening socket among the workers, and a burst of
new connections is taken by whichever worker's event loop wakes first: a client opening
32 keep-alive connections at once could find all 32 on one worker, the others idle. Here
every worker binds the address itself with ``SO_REUSEPORT`` and the kernel deals each
new connection to one of the sockets by a hash of the client's address and port.

The parent process listens on nothing. It starts the workers, replaces one that dies
(giving up, exit status 1, when workers keep dying at start), and on SIGTERM or SIGINT
passes SIGTERM on and waits: each worker stops accepting, finishes the requests in
flight (up to the graceful timeout) and exits. A worker whose parent is gone (killed
with SIGKILL) stops the same way by itself.

A plain bind is tried first: it fails when anything, another StepUp included, already
listens on the address, which ``SO_REUSEPORT`` alone would quietly share.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
import uvicorn.config

log = logging.getLogger("uvicorn.error")

APP = "stepup.web.factory:app"
BACKLOG = 2048
# A worker that exits this soon after it started counts as a failed start; after
# FAILED_STARTS of those in a row the parent stops instead of restarting forever.
QUICK_EXIT_SECONDS = 10.0
FAILED_STARTS = 5
POLL_SECONDS = 0.25
PARENT_CHECK_SECONDS = 1.0


def supported() -> bool:
    """Whether the kernel spreads connections over ``SO_REUSEPORT`` sockets (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return family, sockaddr


def check_free(host: str, port: int) -> None:
    """Raise OSError if the address is taken (by a socket with or without reuse-port)."""
    family, sockaddr = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(sockaddr)


def listening_socket(host: str, port: int) -> socket.socket:
    family, sockaddr = _address(host, port)
    # IPPROTO_TCP named, not left 0: accepted sockets inherit it, and asyncio's event
    # loop sets TCP_NODELAY only on sockets that say they are TCP. Without it every
    # answer (headers, then body, two writes) waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(sockaddr)
    sock.listen(BACKLOG)
    sock.set_inheritable(False)
    return sock


def _watch_parent(parent: int) -> None:
    """Stop this worker (gracefully, as on SIGTERM) once its supervisor is gone: killed
    with SIGKILL, a supervisor cannot pass anything on, and an orphan would go on
    taking its share of the port."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """A worker process: its own socket, one uvicorn server, the app from the factory."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="parent-watch").start()
    sock = listening_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(APP, factory=True, **options))
    server.run(sockets=[sock])


class Supervisor:
    def __init__(self, host: str, port: int, count: int, options: dict[str, Any],
                 target: Callable[[str, int, dict[str, Any]], None] = _worker) -> None:
        self.host, self.port, self.count, self.options = host, port, count, options
        self.target = target
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._started: dict[BaseProcess, float] = {}

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=self.target, name="stepup-worker",
                                        args=(self.host, self.port, self.options))
        process.start()
        self._started[process] = time.monotonic()
        log.info("Started worker process [%s]", process.pid)
        return process

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0) or repeated failed starts (1)."""
        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
        log.setLevel(logging.INFO)
        previous = {signum: signal.signal(signum, self._on_signal)
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        processes = [self._start() for _ in range(self.count)]
        try:
            return self._supervise(processes)
        finally:
            self._shut_down(processes)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _supervise(self, processes: list[BaseProcess]) -> int:
        failed_starts = 0
        while not self._stop.wait(POLL_SECONDS):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                lived = time.monotonic() - self._started.pop(process)
                failed_starts = failed_starts + 1 if lived < QUICK_EXIT_SECONDS else 0
                log.warning("Worker process [%s] exited with status %s after %.0f s",
                            process.pid, process.exitcode, lived)
                if failed_starts >= FAILED_STARTS:
                    log.error("Workers keep exiting at start; stopping")
                    return 1
                processes[i] = self._start()
        return 0

    def _shut_down(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        grace = float(self.options.get("timeout_graceful_shutdown") or 0)
        deadline = time.monotonic() + grace + 10
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("Worker process [%s] did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
