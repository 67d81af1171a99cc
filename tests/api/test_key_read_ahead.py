"""A verify's check reads its user, method and guards in the API key's own read
(``apikeys.held``'s ``check``, store/api_keys.py): one statement, one round trip on
PostgreSQL, fewer; and what is read ahead is used only where it is what the check would
have read, never for a user the key's app does not own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyotp
from sqlalchemy import event
from sqlalchemy.engine import Engine

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, apps, headless
from stepup.services.runtime import Actor, Runtime
from stepup.store.api_keys import CheckRead
from tests.api.helpers import problem
from tests.api.test_headless import verify
from tests.api.test_key_count_joined import user_and_checker


@contextmanager
def selects() -> Iterator[list[str]]:
    """The SELECTs any engine of this process sends meanwhile (any of the instances of
    ``STEPUP_TEST_WORKERS`` may answer the call)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


async def test_a_verify_reads_once(client: httpx.AsyncClient, runtime: Runtime,
                                   clock: FrozenClock) -> None:
    uid, secret, _row, key = await user_and_checker(client, runtime, clock, rate=10)
    with selects() as seen:
        r = await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    _read_once(seen)
    with selects() as seen:
        problem(await verify(client, key, uid, "totp", "000000"), 400, "invalid_code")
    _read_once(seen)


def _read_once(seen: list[str]) -> None:
    """The key, its user, the method and the guards in one SELECT, and no other SELECT
    of the method or the guards (SQLite's audit chain reads its head on its own)."""
    reads = [s for s in seen if "methods" in s or "guards" in s]
    assert len(reads) == 1, seen
    assert "api_keys" in reads[0] and "guard_a" in reads[0] and "guard_b" in reads[0]


async def test_what_is_read_ahead_answers_as_the_checks_own_read(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, _row, key = await user_and_checker(client, runtime, clock, rate=20)
    problem(await verify(client, key, "0" * 32, "totp", "123456"), 404, "not_found")
    problem(await verify(client, key, uid, "sms", "123456"), 409, "method_not_enabled")
    # Locked after its failures, as when the guards are read by the check itself.
    for _ in range(10):
        r = await verify(client, key, uid, "totp", "000000")
        if r.status_code == 423:
            break
        problem(r, 400, "invalid_code")
    problem(await verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now())),
            423, "method_locked")


async def test_another_apps_user_is_not_read_ahead_into_the_check(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, _row, _key = await user_and_checker(client, runtime, clock, rate=10)
    await apps.create(runtime, Actor(name="t"), "elsewhere")
    _other, stranger = await apikeys.create(runtime, "elsewhere", "app", Actor(name="t"),
                                            app="elsewhere")
    problem(await verify(client, stranger, uid, "totp", pyotp.TOTP(secret).at(clock.now())),
            404, "not_found")


def test_only_a_logins_check_of_a_known_method_is_read_ahead() -> None:
    ahead = headless.check_read("u1", {"method": "totp", "code": "123456"})
    assert ahead == CheckRead("u1", "totp", ("account", "method:totp"))
    assert headless.check_read("u1", {"method": "totp", "purpose": "login"}) == ahead
    assert headless.check_read("u1", {"method": "totp", "purpose": "op123"}) is None
    assert headless.check_read("u1", {"method": "nonesuch"}) is None
    assert headless.check_read("u1", {"method": ["totp"]}) is None
    assert headless.check_read("u1", ["totp"]) is None
    # Backup codes' slow hash is made before the transaction opens: nothing to read ahead.
    assert headless.check_read("u1", {"method": "backup_codes"}) is None
