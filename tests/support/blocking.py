"""A hasher that holds one of its slow hashes open until the test lets it go, to prove
that no write lock is held meanwhile: other writes, of this worker and of another,
commit while it waits; and any async function held the same way (``Held``), to show
what an answer does not wait for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from stepup.domain.hashing import Hasher
from stepup.services.runtime import Runtime
from stepup.store import queries
from stepup.store.db import make_engine, make_sessionmaker


class BlockingHasher(Hasher):
    """The runtime's hasher, whose method ``blocks`` waits (in run_cpu's thread) until
    ``release`` is set; ``started`` is set when it is called."""

    def __init__(self, inner: Hasher, blocks: str) -> None:
        self.__dict__.update(inner.__dict__)
        self.started = threading.Event()
        self.release = threading.Event()
        original = getattr(inner, blocks)

        def blocked(*args: Any) -> Any:
            self.started.set()
            assert self.release.wait(20), "never released"
            return original(*args)

        setattr(self, blocks, blocked)


def slow_runtime(runtime: Runtime, blocks: str) -> tuple[Runtime, BlockingHasher]:
    """``runtime`` with a hasher whose ``blocks`` method waits for the test."""
    hasher = BlockingHasher(runtime.hasher, blocks)
    return Runtime(settings=runtime.settings, engine=runtime.engine,
                   sessionmaker=runtime.sessionmaker, keyring=runtime.keyring,
                   hasher=hasher, clock=runtime.clock), hasher


async def writes_commit_while_hashing(runtime: Runtime, hasher: BlockingHasher,
                                      check: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run ``check``; while it hashes, commit a write from another engine (another
    worker) and one from ``runtime``'s own (one SQLite connection per process); then
    let the hash finish. The finished task is returned for the caller's assertions."""
    task = asyncio.ensure_future(check)
    other = make_engine(runtime.settings.effective_database_url)
    try:
        while not hasher.started.is_set():
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        window = runtime.clock.now()

        async def write(make: Any) -> None:
            async with make() as db:
                await queries.rate_hit(db, "probe", window)
                await db.commit()

        await asyncio.wait_for(write(make_sessionmaker(other)), 5)
        await asyncio.wait_for(write(runtime.sessionmaker), 5)
        assert not task.done()
    finally:
        hasher.release.set()
        await other.dispose()
    await asyncio.wait([task])
    return task


class Held:
    """An async function made to wait at each call until the test sets ``release``;
    ``started`` is set when it is called (on the test's event loop)."""

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
        self.inner = inner
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.started.set()
        await asyncio.wait_for(self.release.wait(), 20)
        return await self.inner(*args, **kwargs)
