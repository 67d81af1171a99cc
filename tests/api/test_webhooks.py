"""Webhooks on confirmation: written with the confirmation, posted to a real local HTTP
server, signed with HMAC-SHA256 over a timestamp and the body, retried with back-off."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import webhooks
from stepup.services.runtime import Runtime
from stepup.store.models import WebhookDelivery
from tests.api.helpers import session_for, sign_up, totp_now
from tests.api.oob_support import closed_port
from tests.api.ops_support import (
    WITHDRAWAL,
    app_with,
    confirm,
    past_pin,
    totp_for_withdrawal,
)
from tests.support.providers import ProviderServer, Received, Scripted

SECRET = "whsec-test-2f8d"


@pytest.fixture
def receiver() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
async def hooked(settings: Settings, runtime: Runtime, clock: FrozenClock,
                 receiver: ProviderServer) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with app_with(settings, clock, webhook_url=f"{receiver.url}/hooks/stepup",
                        webhook_secret=SECRET, webhook_max_attempts=3) as pair:
        yield pair


async def _confirmed(client: httpx.AsyncClient, clock: FrozenClock, rt: Runtime
                     ) -> tuple[str, str]:
    await sign_up(client)
    token = await session_for(client)
    secret = await totp_for_withdrawal(client, token, clock)
    # Enabling the method was an event too (method.enabled): these tests are about the
    # confirmation alone (tests/api/test_app_webhooks.py covers the others).
    async with rt.db() as db:
        await db.execute(delete(WebhookDelivery))
        await db.commit()
    op_id = await past_pin(client, token)
    r = await confirm(client, token, op_id, "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    return op_id, str(r.json()["receipt"])


async def _deliveries(rt: Runtime) -> list[WebhookDelivery]:
    async with rt.db() as db:
        rows = (await db.execute(select(WebhookDelivery)
                                 .execution_options(populate_existing=True))).scalars().all()
        return list(rows)


def _independent_check(hit: Received, secret: str) -> int:
    """What a receiver written from the docs does, without our code."""
    header = hit.headers["stepup-signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + hit.body, hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), parts["v1"]), header
    return int(parts["t"])


async def test_a_confirmation_is_posted_signed(hooked: tuple[httpx.AsyncClient, Runtime],
                                               clock: FrozenClock,
                                               receiver: ProviderServer) -> None:
    client, rt = hooked
    op_id, receipt = await _confirmed(client, clock, rt)

    # Written with the confirmation, sent only by the sender.
    [row] = await _deliveries(rt)
    assert row.event == "operation.confirmed" and row.attempts == 0
    assert receiver.received == []

    assert await webhooks.deliver_due(rt) == 1
    [hit] = receiver.received
    assert hit.path == "/hooks/stepup"
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["stepup-event"] == "operation.confirmed"
    assert hit.headers["stepup-event-id"] == row.id

    ts = _independent_check(hit, SECRET)
    assert ts == int(clock.now().timestamp())
    body: dict[str, Any] = hit.json
    assert body["id"] == row.id and body["type"] == "operation.confirmed"
    operation = body["data"]["operation"]
    assert operation["id"] == op_id and operation["status"] == "confirmed"
    assert operation["details"] == WITHDRAWAL and operation["method"] == "totp"
    assert body["data"]["receipt"] == receipt

    text = hit.body.decode()
    header = hit.headers["stepup-signature"]
    assert webhooks.verify_signature(SECRET, header, text, ts)
    assert webhooks.verify_signature(SECRET, header, text, ts + 300)
    assert not webhooks.verify_signature(SECRET, header, text, ts + 301)  # stale: a replay
    assert not webhooks.verify_signature(SECRET, header, text, ts - 301)
    assert not webhooks.verify_signature("another-secret", header, text, ts)
    assert not webhooks.verify_signature(SECRET, header, text.replace("0.25", "2.50"), ts)
    assert not webhooks.verify_signature(SECRET, "t=abc,v1=00", text, ts)
    assert not webhooks.verify_signature(SECRET, "", text, ts)

    [row] = await _deliveries(rt)
    assert row.delivered_at is not None and row.attempts == 1
    assert await webhooks.deliver_due(rt) == 0  # once
    assert len(receiver.received) == 1


async def test_a_failing_receiver_is_retried_with_back_off(
        hooked: tuple[httpx.AsyncClient, Runtime], clock: FrozenClock,
        receiver: ProviderServer) -> None:
    client, rt = hooked
    await _confirmed(client, clock, rt)
    receiver.script.extend(Scripted(500, {"error": "down"}) for _ in range(10))

    assert await webhooks.deliver_due(rt) == 0
    assert len(receiver.received) == 1
    [row] = await _deliveries(rt)
    assert row.attempts == 1 and row.last_error == "HTTP 500"
    assert await webhooks.deliver_due(rt) == 0  # not due yet
    assert len(receiver.received) == 1

    clock.advance(9)
    await webhooks.deliver_due(rt)
    assert len(receiver.received) == 1
    clock.advance(1)  # 10 s after the first failure
    await webhooks.deliver_due(rt)
    assert len(receiver.received) == 2
    clock.advance(19)
    await webhooks.deliver_due(rt)
    assert len(receiver.received) == 2
    clock.advance(1)  # 20 s after the second: doubling
    await webhooks.deliver_due(rt)
    assert len(receiver.received) == 3

    # webhook_max_attempts = 3: given up, kept with the last error.
    [row] = await _deliveries(rt)
    assert row.attempts == 3 and row.next_attempt_at is None and row.delivered_at is None
    assert row.last_error == "HTTP 500"
    clock.advance(3600)
    assert await webhooks.deliver_due(rt) == 0
    assert len(receiver.received) == 3

    # Every attempt is the same event, freshly signed.
    ids = {hit.headers["stepup-event-id"] for hit in receiver.received}
    assert len(ids) == 1
    for hit in receiver.received:
        _independent_check(hit, SECRET)


async def test_a_retry_that_succeeds_is_delivered_once(
        hooked: tuple[httpx.AsyncClient, Runtime], clock: FrozenClock,
        receiver: ProviderServer) -> None:
    client, rt = hooked
    await _confirmed(client, clock, rt)
    receiver.script.append(Scripted(503, {}))
    assert await webhooks.deliver_due(rt) == 0
    clock.advance(10)
    assert await webhooks.deliver_due(rt) == 1
    [row] = await _deliveries(rt)
    assert row.delivered_at is not None and row.attempts == 2
    clock.advance(3600)
    assert await webhooks.deliver_due(rt) == 0
    assert len(receiver.received) == 2


async def test_an_unreachable_receiver_is_retried(settings: Settings, runtime: Runtime,
                                                  clock: FrozenClock) -> None:
    async with app_with(settings, clock, webhook_url=f"http://127.0.0.1:{closed_port()}/",
                        webhook_secret=SECRET) as (client, rt):
        await _confirmed(client, clock, rt)
        assert await webhooks.deliver_due(rt) == 0
        [row] = await _deliveries(rt)
        assert row.attempts == 1 and row.last_error and "transport" in row.last_error
        assert row.next_attempt_at is not None


async def test_no_webhook_without_a_url(client: httpx.AsyncClient, runtime: Runtime,
                                        clock: FrozenClock) -> None:
    await _confirmed(client, clock, runtime)
    assert await _deliveries(runtime) == []
    assert await webhooks.deliver_due(runtime) == 0


def test_the_documented_signature_format() -> None:
    body = json.dumps({"id": "e1"})
    header = webhooks.signature("s", 1700000000, body)
    expected = hmac.new(b"s", f"1700000000.{body}".encode(), hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
