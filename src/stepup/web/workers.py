"""``stepup serve --workers N``: N worker processes, the supervisor dealing them the
connections in turn.

The supervisor (the parent process) listens on the address and accepts every new
connection itself; it hands each one to the next worker in turn, over a Unix socket
pair per worker (the descriptor passed with ``SCM_RIGHTS``), and closes its own copy.
The worker serves it as if it had accepted it. So N connections opened together are
spread N / workers to each, exactly. A keep-alive connection stays with its worker, and
with two workers a 7-to-1 split of eight connections (which the kernel's hash of
``SO_REUSEPORT`` gave, or worse, about one run in fourteen) held one worker's clients
at twice the other's latency; with uvicorn's own ``--workers``, which shares one socket,
whichever worker woke first could take a whole burst. This is what Node.js's
``cluster`` does by default. A connection costs the supervisor an accept and a
``sendmsg``; the requests on it never pass through the supervisor.

A worker is dealt connections only once it says it is ready (its application started),
and no longer once its socket pair closes (it stopped or died). Before any worker is
ready, new connections wait in the listening socket's backlog. The supervisor replaces
a worker that dies (giving up, exit status 1, when workers keep dying at start), and on
SIGTERM or SIGINT stops accepting, passes SIGTERM on and waits: each worker finishes the
requests in flight (up to the graceful timeout) and exits. A worker whose parent is gone
(killed with SIGKILL) stops the same way by itself.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
# What goes over a worker's socket pair: READY from the worker once it serves, then
# one CONNECTION message from the supervisor per connection, its descriptor attached.
READY = b"R"
CONNECTION = b"C"
# At most this many connections accepted at a time before the supervisor looks at its
# workers again.
ACCEPT_BATCH = 64


def supported() -> bool:
    """Whether the supervisor can pass connections to workers (Unix socket pairs of
    packets, descriptors sent with ``SCM_RIGHTS``: Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def listening_socket(host: str, port: int) -> socket.socket:
    """The address bound and listened on; OSError if anything already listens there."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    # IPPROTO_TCP named, not left 0: accepted sockets inherit it, and asyncio's event
    # loop sets TCP_NODELAY only on sockets that say they are TCP. Without it every
    # answer (headers, then body, two writes) waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _watch_parent(parent: int) -> None:
    """Stop this worker (gracefully, as on SIGTERM) once its supervisor is gone: killed
    with SIGKILL, a supervisor cannot pass anything on."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


class DealtServer(uvicorn.Server):
    """A uvicorn server that listens on nothing: it serves the connections its
    supervisor sends over ``channel`` (its end of the socket pair)."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel
        self._opening: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if not self.started:
            return
        loop = asyncio.get_running_loop()
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._receive, loop)
        self._channel.send(READY)

    def _protocol(self) -> asyncio.Protocol:
        config = self.config
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state,
            _loop=asyncio.get_running_loop())

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message:  # the supervisor is gone: stop, as on SIGTERM
                self._stop_receiving(loop)
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._open(loop, socket.socket(fileno=fd)))
                self._opening.add(task)
                task.add_done_callback(self._opening.discard)

    async def _open(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(self._protocol, sock)
        except OSError as exc:  # the client left before it was served
            log.debug("A dealt connection could not be opened: %s", exc)
            sock.close()

    def _stop_receiving(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._channel.fileno() >= 0:
            loop.remove_reader(self._channel.fileno())
            self._channel.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Closing the pair tells the supervisor to deal this worker nothing more.
        self._stop_receiving(asyncio.get_running_loop())
        await super().shutdown(sockets)


def _worker(channel: socket.socket, options: dict[str, Any]) -> None:
    """A worker process: one uvicorn server, the app from the factory, serving the
    connections dealt over ``channel``."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="parent-watch").start()
    DealtServer(uvicorn.Config(APP, factory=True, **options), channel).run()


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket  # the supervisor's end of the pair
    started: float = field(default_factory=time.monotonic)
    ready: bool = False


class Supervisor:
    """Starts ``count`` workers, deals them the connections ``listener`` accepts, and
    replaces those that die. ``target(channel, options)``: a worker's body."""

    def __init__(self, listener: socket.socket, count: int, options: dict[str, Any],
                 target: Callable[[socket.socket, dict[str, Any]], None] = _worker) -> None:
        self.listener, self.count, self.options = listener, count, options
        self.target = target
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self._next = 0  # whose turn it is to be dealt a connection

    def _start(self) -> _Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self._context.Process(target=self.target, name="stepup-worker",
                                        args=(theirs, self.options))
        process.start()
        theirs.close()
        ours.setblocking(False)
        worker = _Worker(process, ours)
        self._selector.register(ours, selectors.EVENT_READ, worker)
        log.info("Started worker process [%s]", process.pid)
        return worker

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0) or repeated failed starts (1)."""
        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
        log.setLevel(logging.INFO)
        previous = {signum: signal.signal(signum, self._on_signal)
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        self.listener.setblocking(False)
        self._workers = [self._start() for _ in range(self.count)]
        try:
            return self._supervise()
        finally:
            self._listen(False)
            self.listener.close()
            self._shut_down()
            self._selector.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _supervise(self) -> int:
        failed_starts = 0
        while not self._stop.is_set():
            for key, _ in self._selector.select(POLL_SECONDS):
                if key.data is None:
                    self._deal()
                else:
                    self._hear(key.data)
            for i, worker in enumerate(self._workers):
                if worker.process.is_alive():
                    continue
                self._retire(worker)
                lived = time.monotonic() - worker.started
                failed_starts = failed_starts + 1 if lived < QUICK_EXIT_SECONDS else 0
                log.warning("Worker process [%s] exited with status %s after %.0f s",
                            worker.process.pid, worker.process.exitcode, lived)
                if failed_starts >= FAILED_STARTS:
                    log.error("Workers keep exiting at start; stopping")
                    return 1
                self._workers[i] = self._start()
            self._listen(any(w.ready for w in self._workers))
        return 0

    def _listen(self, on: bool) -> None:
        """Accept while some worker can be dealt a connection; else leave new ones in
        the backlog."""
        listening = self.listener in self._selector.get_map()
        if on and not listening:
            self._selector.register(self.listener, selectors.EVENT_READ, None)
        elif listening and not on:
            self._selector.unregister(self.listener)

    def _hear(self, worker: _Worker) -> None:
        try:
            message = worker.channel.recv(16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message = b""
        if message == READY:
            worker.ready = True
        elif not message:  # the worker stopped or died
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.ready = False
        if worker.channel.fileno() >= 0:
            self._selector.unregister(worker.channel)
            worker.channel.close()

    def _deal(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNABORTED, EMFILE …: the next one may do
                log.warning("Accepting a connection failed: %s", exc)
                return
            with conn:
                self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        """Send ``conn`` to the next ready worker in turn (its own copy; the caller
        closes this one). A worker whose pair is full or broken is passed over; with
        none left, the connection is closed unserved."""
        count = len(self._workers)
        for _ in range(count):
            worker = self._workers[self._next]
            self._next = (self._next + 1) % count
            if not worker.ready:
                continue
            try:
                socket.send_fds(worker.channel, [CONNECTION], [conn.fileno()])
                return
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._retire(worker)
        log.warning("No worker could take a new connection; it was closed")

    def _shut_down(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        grace = float(self.options.get("timeout_graceful_shutdown") or 0)
        deadline = time.monotonic() + grace + 10
        for worker in self._workers:
            process = worker.process
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("Worker process [%s] did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
            self._retire(worker)
