"""A right code clears its guards in the order a wrong one counts them: the account's
first, then the method's (services/ratelimit.py, ``_passed``). Taken the other way round,
a success and a failure of one account, each holding one guard row and waiting for the
other's, close a cycle that PostgreSQL breaks by undoing one of them."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from stepup.domain.clock import FrozenClock
from stepup.domain.policy import ACCOUNT_SCOPE, method_scope
from stepup.services import ratelimit
from stepup.services.runtime import Runtime
from stepup.store import queries
from tests.api.test_read_first_verify import (
    _portal_user_with_totp,
    _sent_wrong,
    _wrong,
)
from tests.pg.test_key_count_last import _until_a_call_waits_for_a_lock


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
