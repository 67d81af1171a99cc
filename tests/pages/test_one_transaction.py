"""A wrong code costs one transaction: the page draws the form again from what the
refused step read, and does not open another transaction to read it a second time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import event

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.pages.helpers import (
    PIN,
    check,
    enable_totp,
    get,
    log_in,
    log_out,
    redirected_to,
    sign_up,
    submit,
)
from tests.pages.test_oob import E164, MASKED, PHONE, last_code
from tests.pages.test_operations import enter_pin, new_withdrawal, switch_on_withdrawal
from tests.support import instances


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """One instance, even with STEPUP_TEST_WORKERS: the transactions counted are those of
    the engine that served the request (another worker's engine is not watched)."""
    async with instances.http_client(runtime, count=1) as c:
        yield c


class Begins:
    count = 0


@contextmanager
def transactions(runtime: Runtime) -> Iterator[Begins]:
    """How many transactions the database began meanwhile, on any connection."""
    seen = Begins()

    def began(_conn: object) -> None:
        seen.count += 1

    engine = runtime.engine.sync_engine
    event.listen(engine, "begin", began)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", began)


async def test_a_wrong_code_at_login_costs_one_transaction(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    html = await get(client, "/login/second-factor")
    with transactions(runtime) as seen:
        r = await submit(client, html, "/login/second-factor", code="000000")
    page = check(r, 400)
    assert "not valid" in page and 'action="/login/second-factor"' in page
    assert seen.count == 1


async def test_a_wrong_code_confirming_an_enrollment_costs_one_transaction(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    session = await _session_cost(client, runtime)
    html = await get(client, "/settings/methods/sms/enable")
    html = check(await submit(client, html, "/settings/methods/sms/enable", phone=PHONE,
                              pin=PIN))
    with transactions(runtime) as seen:
        r = await submit(client, html, "/settings/methods/sms/confirm", code="000000")
    page = check(r, 400)
    assert MASKED in page and "not valid" in page
    assert seen.count == session + 1


async def _session_cost(client: httpx.AsyncClient, runtime: Runtime) -> int:
    """What a signed-in request costs before its handler runs: the session."""
    with transactions(runtime) as session:
        check(await client.get("/settings/methods/backup_codes/regenerate"))
    return session.count


async def test_a_wrong_code_on_a_switch_costs_one_transaction(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    html = await get(client, "/settings/methods/sms/enable")
    html = check(await submit(client, html, "/settings/methods/sms/enable", phone=PHONE,
                              pin=PIN))
    code = await last_code(runtime, E164)
    redirected_to(await submit(client, html, "/settings/methods/sms/confirm", code=code),
                  "/settings/methods?done=enabled")
    html = await get(client, "/settings/methods/sms/switch?op=withdrawal&on=1")
    session = await _session_cost(client, runtime)
    with transactions(runtime) as seen:
        r = await submit(client, html, "/settings/methods/sms/switch", code="000000")
    page = check(r, 400)
    assert "No code was sent for this step" in page
    assert "Codes are sent to +7 *** ***-45-67." in page  # as the refused step read it
    assert seen.count == session + 1


async def test_a_wrong_code_confirming_a_withdrawal_costs_one_transaction(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await sign_up(client)
    secret = await enable_totp(client, clock)
    await switch_on_withdrawal(client, secret, clock)
    url = await new_withdrawal(client)
    html = await enter_pin(client, url)
    session = await _session_cost(client, runtime)
    with transactions(runtime) as seen:
        r = await submit(client, html, f"{url}/confirm", code="000000")
    page = check(r, 400)
    assert "not valid" in page and 'name="code"' in page and "Step 2 of 2" in page
    assert seen.count == session + 1
