"""The multi-worker race tests need PostgreSQL; they run in the PostgreSQL pass of the
suite (``STEPUP_TEST_DB=postgres``, as ``make test`` does)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("STEPUP_TEST_DB") == "postgres":
        return
    skip = pytest.mark.skip(reason="PostgreSQL pass only (STEPUP_TEST_DB=postgres)")
    for item in items:
        if "tests/pg/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
