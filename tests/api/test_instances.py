"""Any worker serves any request: one user's journey with each request answered by the
next of four app instances (each its own runtime, engine and pool) on one database.
The whole suite runs so on PostgreSQL (``STEPUP_TEST_WORKERS=4`` in ``make test``);
this test keeps the property checked on SQLite too."""

from __future__ import annotations

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.api.helpers import (
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
    verify,
    wrong_totp,
)
from tests.support import instances


async def test_a_journey_spread_over_four_workers_keeps_every_guarantee(
        runtime: Runtime, clock: FrozenClock) -> None:
    async with instances.http_client(runtime, count=4) as client:
        transport = client._transport
        assert isinstance(transport, instances.RoundRobin) and len(transport.transports) == 4
        await sign_up(client)
        secret = await enable_totp(client, await session_for(client), clock)
        clock.advance(30)

        # The login flow opened on one worker is finished on another; the step it used
        # is refused as already used on the next one, and again on the one after.
        code = totp_now(secret, clock)
        r = await verify(client, await login_token(client), "totp", code)
        assert r.status_code == 200, r.text
        for _ in range(2):
            problem(await verify(client, await login_token(client), "totp", code),
                    409, "code_already_used")

        # Failures counted on four workers add up to one lock: the replays counted
        # nothing, and five wrong codes lock the method.
        token = await login_token(client)
        clock.advance(30)
        for _ in range(4):
            problem(await verify(client, token, "totp", wrong_totp(secret, clock)),
                    400, "invalid_code")
        problem(await verify(client, token, "totp", wrong_totp(secret, clock)),
                423, "method_locked")
        problem(await verify(client, token, "totp", totp_now(secret, clock)),
                423, "method_locked")
