"""A right code racing wrong ones on PostgreSQL's ordinary path (READ COMMITTED: a verify
with the end user's context, the hosted login step): a lock they commit before the
right code's transaction does holds against it, and neither waits for the other in a
cycle (services/ratelimit.py, ``hold``, ``check_hold``, ``_passed``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
import pyotp
from sqlalchemy import text

from stepup.domain.clock import FrozenClock
from stepup.domain.policy import ACCOUNT_SCOPE, method_scope
from stepup.services import audit, ratelimit
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from tests.api.helpers import (
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
)
from tests.api.helpers import verify as login_verify
from tests.api.test_audit_chain import user_id
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker
from tests.api.test_read_first_verify import (
    _portal_user_with_totp,
    _sent_wrong,
    _wrong,
)
from tests.pages import helpers as pages
from tests.pg.test_key_count_last import _until_a_call_waits_for_a_lock


async def _behind_the_lock(runtime: Runtime, clock: FrozenClock, uid: str,
                           call: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
    """``call`` (a right code of ``uid``'s authenticator app) sent while another worker's
    wrong codes hold the account's chain head, as each does while it records its
    failure: the call reads, checks the code and waits for the head to record its
    success; meanwhile the failures lock the method, with their events, and commit."""
    async with runtime.db() as failing:
        await failing.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"),
                              {"u": uid})
        calling = asyncio.create_task(call)
        await _until_a_call_waits_for_a_lock(runtime)
        locked = None
        for _ in range(runtime.settings.method_lock_after):
            locked = await ratelimit.method_failed(failing, runtime.settings, clock, uid,
                                                   "totp")
            await audit.record(failing, clock, Actor(name="user"), "code.failed", uid,
                               method="totp", purpose="login", reason="invalid_code")
        assert locked is not None
        await failing.commit()
    return await asyncio.wait_for(calling, 30)


async def _unlock(runtime: Runtime, uid: str) -> None:
    async with runtime.db() as db:
        await ratelimit.unlock(db, uid, method_scope("totp"))
        await db.commit()


async def test_a_portal_verify_behind_the_failures_that_lock_its_method_is_refused(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, _row, key = await user_and_checker(client, runtime, clock, rate=100)
    code = pyotp.TOTP(secret).at(clock.now())
    context = {"StepUp-End-User-IP": "203.0.113.9"}  # a login's event: the ordinary path
    r = await _behind_the_lock(runtime, clock, uid,
                               verify(client, key, uid, "totp", code, context=context))
    problem(r, 423, "method_locked")
    # Refused whole: the step unspent, the lock kept; once unlocked the code passes.
    await _unlock(runtime, uid)
    r = await verify(client, key, uid, "totp", code, context=context)
    assert r.status_code == 200, r.text


async def test_a_login_step_behind_the_failures_that_lock_its_method_is_refused(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, await session_for(client), clock)
    clock.advance(30)  # the enrolment's step is spent
    uid = await user_id(runtime, "jane@example.com")
    flow = await login_token(client)
    code = totp_now(secret, clock)
    r = await _behind_the_lock(runtime, clock, uid, login_verify(client, flow, "totp", code))
    problem(r, 423, "method_locked")
    await _unlock(runtime, uid)
    r = await login_verify(client, flow, "totp", code)
    assert r.status_code == 200, r.text
    assert r.json()["session_token"]


async def test_a_success_clears_guards_in_the_order_a_failure_counts_them(
        runtime: Runtime, clock: FrozenClock) -> None:
    _key, uid, secret = await _portal_user_with_totp(runtime, clock)
    await _sent_wrong(runtime, uid, _wrong(secret, clock))  # both guards hold a failure
    scopes = ratelimit.scopes_of("totp")
    async with runtime.db() as failing, runtime.db() as passing:
        # The failure never looks for a cycle first: had one closed, the success's
        # backend would find it (after deadlock_timeout, 1 s) and undo the success.
        await failing.execute(text("SET LOCAL deadlock_timeout = '60s'"))
        await queries.add_guard_failure(failing, uid, ACCOUNT_SCOPE)  # holds that row
        guards = ratelimit.Guards(await queries.get_guard_states(passing, uid, scopes))
        assert guards.needs_clearing(ACCOUNT_SCOPE, keep_level=True)
        assert guards.needs_clearing(method_scope("totp"), keep_level=False)
        clearing = asyncio.create_task(
            ratelimit.method_passed(passing, clock, uid, "totp", guards))
        await _until_a_call_waits_for_a_lock(runtime)  # for the account's row
        # The failure goes on to the method's row, which the success has not taken.
        await asyncio.wait_for(queries.add_guard_failure(failing, uid, method_scope("totp")),
                               timeout=30)
        await failing.commit()
        await asyncio.wait_for(clearing, timeout=30)
        await passing.commit()
    async with runtime.read() as db:
        states = await queries.get_guard_states(db, uid, scopes)
    # The success came last: it cleared what the failure counted (the account's level
    # kept, as ever).
    assert states[ACCOUNT_SCOPE][0] == 0
    assert states[method_scope("totp")][:2] == (0, 0)


async def test_the_login_page_behind_the_failures_that_lock_its_method_asks_again(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """Refused after its check passed, the step still draws the form with the methods it
    read, and the lock's message, as a refusal by the check itself does."""
    await pages.sign_up(client)
    secret = await pages.enable_totp(client, clock)
    clock.advance(30)  # the enrolment's step is spent
    await pages.log_out(client)
    pages.redirected_to(await pages.log_in(client), "/login/second-factor")
    html = await pages.get(client, "/login/second-factor")
    uid = await user_id(runtime, pages.EMAIL)
    r = await _behind_the_lock(runtime, clock, uid, pages.submit(
        client, html, "/login/second-factor", code=totp_now(secret, clock)))
    assert r.status_code == 423, (r.status_code, r.text[:2000])
    pages.form(r.text, "/login/second-factor")  # asked again, not sent back to log in
    await _unlock(runtime, uid)
    r = await pages.submit(client, r.text, "/login/second-factor",
                           code=totp_now(secret, clock))
    pages.redirected_to(r, "/settings/methods")
