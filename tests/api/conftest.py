"""Fixtures for the out-of-band code tests: real SMTP and provider servers, and an app
built with settings overrides on the shared test database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.api.oob_support import SMTP_PASSWORD, SMTP_USER, Stack, provider_settings
from tests.support import instances
from tests.support.providers import ProviderServer
from tests.support.smtp import SmtpServer

StartStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(mode="plain", user=SMTP_USER, password=SMTP_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def api() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
async def start_stack(settings: Settings, runtime: Runtime, clock: FrozenClock,
                      smtp: SmtpServer, api: ProviderServer) -> AsyncIterator[StartStack]:
    """``await start_stack(**overrides)``: the app with providers configured; ``runtime``
    (unused otherwise) has wiped the database. Several stacks may share it."""
    async with contextlib.AsyncExitStack() as opened:
        async def start(*, settings_obj: Settings | None = None, ip: str = "203.0.113.7",
                        **overrides: Any) -> Stack:
            s = settings_obj or settings.model_copy(
                update={**provider_settings(smtp, api), **overrides})
            rt = Runtime.build(s, clock)
            opened.push_async_callback(rt.engine.dispose)
            client = await opened.enter_async_context(
                instances.http_client(rt, client=(ip, 50000)))
            return Stack(client=client, rt=rt, clock=clock, smtp=smtp, api=api)

        yield start


@pytest.fixture
async def stack(start_stack: StartStack) -> Stack:
    return await start_stack()
