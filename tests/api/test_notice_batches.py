"""The notice sender works in batches: more notices than one batch all go out once, and
a batch whose sends run slow gives the untried rest back at once instead of holding
them until its lease ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from stepup.services import notifications
from stepup.services.runtime import Runtime
from stepup.store import queries
from stepup.store.models import NotificationQueue, OutboxMessage
from tests.api.conftest import StartStack
from tests.api.oob_support import Stack, verifies_email
from tests.api.test_notifications import signed_in


async def queue_many(stack: Stack, count: int) -> None:
    """``count`` new-device notices for one account, queued as logins queue them."""
    token = await signed_in(stack)
    assert token
    async with stack.rt.db() as db:
        user = await queries.get_user_by_email(db, "jane@example.com")
        assert user is not None
        for _ in range(count):
            await notifications.notify(stack.rt, db, user, "login.new_device",
                                       device="Firefox on Linux", ip="203.0.113.7")
        await db.commit()


def notices_sent(stack: Stack) -> int:
    """Messages in the inbox, but the sign-up's e-mail verification."""
    return len([m for m in stack.smtp.inbox.messages if not verifies_email(m)])


async def rows(stack: Stack) -> list[NotificationQueue]:
    async with stack.rt.db() as db:
        return list((await db.execute(select(NotificationQueue))).scalars().all())


async def test_more_notices_than_a_batch_all_go_out_once(start_stack: StartStack) -> None:
    stack = await start_stack()
    count = notifications.BATCH * 2 + 7
    await queue_many(stack, count)
    assert await notifications.deliver_due(stack.rt) == count
    assert notices_sent(stack) == count
    assert all(n.sent_at is not None and n.attempts == 1 for n in await rows(stack))
    assert await notifications.deliver_due(stack.rt) == 0


async def test_two_senders_share_batches_without_sending_twice(
        start_stack: StartStack) -> None:
    a = await start_stack()
    b = await start_stack()  # another worker: its own engine and connections
    count = notifications.BATCH + 13
    await queue_many(a, count)
    sent = await asyncio.gather(notifications.deliver_due(a.rt),
                                notifications.deliver_due(b.rt))
    assert sum(sent) == count
    assert notices_sent(a) == count
    assert all(n.attempts == 1 for n in await rows(a))


async def test_a_slow_batch_gives_the_rest_back_due_at_once(
        start_stack: StartStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = await start_stack()
    await queue_many(stack, 5)
    # A lease so short that any send uses up half of it: each batch sends one notice
    # and hands the other four back, due now rather than at the end of the lease.
    monkeypatch.setattr(notifications, "LEASE", timedelta(microseconds=1))
    monkeypatch.setattr(notifications, "BATCH", 5)
    assert await notifications.deliver_due(stack.rt) == 5
    assert notices_sent(stack) == 5
    assert all(n.sent_at is not None and n.attempts == 1 for n in await rows(stack))


async def test_requests_are_served_during_a_burst_of_notices(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    """The development outbox writes each notice in a transaction of its own, and on
    SQLite statements run on the event loop itself: a sender that never gave the loop
    back would hold every request until the whole burst was out (the login step's
    p99 of a second in bench/README.md). Something else that wants the loop and the
    database gets them between sends."""
    r = await client.post("/api/v1/accounts", json={
        "email": "burst@example.com", "password": "correct-horse-battery-9", "pin": "401937"})
    assert r.status_code == 201, r.text
    async with runtime.db() as db:
        user = await queries.get_user_by_email(db, "burst@example.com")
        assert user is not None
        for _ in range(60):
            await notifications.notify(runtime, db, user, "login.new_device",
                                       device="Firefox on Linux", ip="203.0.113.7")
        await db.commit()

    async def outbox_size() -> int:
        async with runtime.db() as db:
            q = select(func.count()).select_from(OutboxMessage)
            return int((await db.execute(q)).scalar_one())

    before = await outbox_size()
    sender = asyncio.create_task(notifications.deliver_due(runtime))
    seen: list[int] = []
    while not sender.done():
        await asyncio.sleep(0)
        seen.append(await outbox_size() - before)
    assert await sender == 60
    # Served while the burst was going out, not only before or after it.
    assert any(0 < n < 60 for n in seen), seen
