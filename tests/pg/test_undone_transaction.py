"""A call whose transaction PostgreSQL undoes to break a cycle of lock waits answers a
retryable 503 (``service_unavailable``, with Retry-After), not an internal error: it was
rolled back whole, and sent again it goes through (web/problems.py, ``unexpected``).

StepUp's own lock orders leave no such cycle (services/apikeys.py, ``held``); the test
closes one by hand, with a transaction that takes a verify's rows in the opposite order
and waits longer than PostgreSQL's default before looking for the cycle, so that the
verify is the one undone."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
import pyotp
from sqlalchemy import func, select, text

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import problem
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker
from tests.pg.test_key_count_last import _until_a_call_waits_for_a_lock


async def against_user_row_then_method_row(runtime: Runtime, uid: str, method_type: str,
                                           call: Coroutine[Any, Any, httpx.Response]
                                           ) -> httpx.Response:
    """``call`` (a verify of user ``uid``) run while another transaction holds the user's
    row, then, once the call waits for a lock, writes its ``method_type`` method row: the
    order of a transaction that changes a method row through its session. The other side
    never looks for a cycle first (deadlock_timeout 60 s), so the call's backend would."""
    async with runtime.db() as other:
        await other.execute(text("SET LOCAL deadlock_timeout = '60s'"))
        await other.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": uid})
        task = asyncio.create_task(call)
        await _until_a_call_waits_for_a_lock(runtime)
        await asyncio.wait_for(other.execute(text(
            "UPDATE methods SET protects = protects WHERE user_id = :u AND type = :t"),
            {"u": uid, "t": method_type}), timeout=30)
        await other.commit()
    return await task


async def test_a_verify_undone_by_a_deadlock_answers_a_retryable_503(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, _row, key = await user_and_checker(client, runtime, clock, rate=10)
    code = pyotp.TOTP(secret).at(clock.now())
    # The verify spends its step (the method row), then waits for the user row: a cycle
    # with the other side's order, which the verify's side finds.
    r = await against_user_row_then_method_row(
        runtime, uid, "totp", verify(client, key, uid, "totp", code))
    body = problem(r, 503, "service_unavailable")
    assert body["retryable"] is True and r.headers["Retry-After"] == "1"
    async with runtime.read() as db:
        verified = (await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.event == "code.verified"))).scalar_one()
    assert verified == 0
    # Nothing was spent: the same code goes through once, then is a replay.
    r = await verify(client, key, uid, "totp", code)
    assert r.status_code == 200, r.text
    problem(await verify(client, key, uid, "totp", code), 409, "code_already_used")
