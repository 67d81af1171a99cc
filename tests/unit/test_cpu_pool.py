"""The threads that hash (services/runtime.py, ``run_cpu``): their own, at most one per CPU,
and below the event loop's priority, so a quick request gets the CPU first during a
password flood (bench/README.md, "An unrelated write during a password flood")."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import anyio.to_thread
import pytest

from stepup.services import runtime
from stepup.services.runtime import CpuPool, run_cpu

linux = pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice is Linux's")


def own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux
async def test_hashing_runs_below_the_event_loop() -> None:
    loop_nice = own_nice()
    hashing_nice = await run_cpu(own_nice)
    assert hashing_nice > loop_nice
    assert hashing_nice == min(19, loop_nice + runtime.CPU_NICE)
    assert own_nice() == loop_nice


@linux
async def test_other_work_off_the_loop_keeps_its_priority() -> None:
    # anyio's threads also send mail (delivery/smtp.py): the hashing is not among them.
    assert (await run_cpu(threading.current_thread)).name.startswith("stepup-cpu")
    assert await anyio.to_thread.run_sync(own_nice) == own_nice()


async def test_at_most_size_at_once() -> None:
    pool, release = CpuPool(size=2), threading.Event()
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        assert release.wait(10)
        with lock:
            running -= 1

    tasks = [asyncio.ensure_future(pool.run(work)) for _ in range(3)]
    for _ in range(500):
        if running == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time for a third to start, were it allowed to
    assert (running, most) == (2, 2)
    release.set()
    await asyncio.gather(*tasks)


@linux
async def test_works_where_priority_cannot_be_changed(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError("not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    loop_nice = own_nice()
    assert await CpuPool(size=1).run(own_nice) == loop_nice
