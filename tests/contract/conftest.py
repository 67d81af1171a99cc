"""Fixtures of the contract suite: every registered method (``method_type``, its id the
method's type), the surface the test class names, and a driver that joins the two."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.contract.contract import Contract
from tests.contract.drivers import KNOWN_BREACHES, Driver, World, prover_for, registered
from tests.contract.surfaces import Surface


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A known breach of the contract runs as a strict xfail (drivers.KNOWN_BREACHES)."""
    for item in items:
        if not isinstance(item, pytest.Function) or item.cls is None or \
                not issubclass(item.cls, Contract):
            continue
        key = (item.cls.__name__, item.originalname, item.callspec.params["method_type"])
        if key in KNOWN_BREACHES:
            item.add_marker(pytest.mark.xfail(strict=True, reason=KNOWN_BREACHES[key]))


@pytest.fixture(params=registered())
def method_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def surface(request: pytest.FixtureRequest, client: httpx.AsyncClient,
                  runtime: Runtime) -> AsyncIterator[Surface]:
    """The surface the test class drives (its ``surface_kind``), with a user on it."""
    kind = request.cls.surface_kind
    async with kind.opened(client, runtime) as opened:
        await opened.start()
        yield opened


@pytest.fixture
def driver(surface: Surface, method_type: str, client: httpx.AsyncClient,
           clock: FrozenClock, runtime: Runtime) -> Driver:
    return Driver(surface, prover_for(method_type), World(client, clock, method_type), runtime)


@pytest.fixture
async def enabled(driver: Driver) -> Driver:
    """The driver, its method enabled through the surface (so protecting login: it is the
    user's first method)."""
    await driver.enable()
    return driver
