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
from stepup.services import apikeys
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.test_headless import enrol_totp, new_user, verify


@contextmanager
def commits(runtime: Runtime) -> Iterator[list[str]]:
    """Every COMMIT any engine of this process sends meanwhile: with
    ``STEPUP_TEST_WORKERS`` the call may be answered by another instance than
    ``runtime``'s, each with an engine of its own (tests/support/instances.py)."""
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
    _row, admin = await apikeys.create(runtime, "portal", "app", Actor(name="t"))
    uid = await new_user(client, admin)
    secret = await enrol_totp(client, admin, uid, clock)
    clock.advance(60 - clock.now().second)  # a minute of our own
    row, key = await apikeys.create(runtime, "checker", "app", Actor(name="t"),
                                    scopes=["verify"], rate_per_minute=10)
    with commits(runtime) as seen:
        r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    assert seen == ["COMMIT"]
    with commits(runtime) as seen:
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
