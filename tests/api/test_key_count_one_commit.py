"""A verify is one transaction on every database: the API key's count commits with the
verification (its success, or the failure it records), never in a COMMIT of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyotp
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store import queries
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker


@contextmanager
def commits() -> Iterator[list[str]]:
    """Every COMMIT any engine of this process sends meanwhile: with
    ``STEPUP_TEST_WORKERS`` the call may be answered by any of the instances, each with
    an engine of its own (tests/support/instances.py)."""
    seen: list[str] = []

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(Engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", on_commit)


async def test_a_verify_commits_once_with_its_count(client: httpx.AsyncClient,
                                                    runtime: Runtime,
                                                    clock: FrozenClock) -> None:
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    with commits() as seen:
        r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    assert seen == ["COMMIT"]
    with commits() as seen:
        problem(await verify(client, key, uid, "totp", "000000"), 400, "invalid_code")
    assert seen == ["COMMIT"]
    # Both calls counted, the success and the failure recorded.
    async with runtime.read() as db:
        window = clock.now().replace(second=0, microsecond=0)
        assert await queries.rate_value(db, f"apikey:{row.id}", window) == 2
        events = dict((await db.execute(
            select(AuditEvent.event, func.count()).where(AuditEvent.user_id == uid)
            .group_by(AuditEvent.event))).all())
    assert events["code.verified"] == 1 and events["code.failed"] == 1
