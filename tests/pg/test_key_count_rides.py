"""On PostgreSQL a verify's API key is counted by the verification's audit statement, its
last write (``audit.record_last``, store/audit.py): no statement of its own, one
round trip fewer. The counter row is locked after the user's row there, as when the count
ran inside the COMMIT, so verifications of one key still cannot deadlock; a count whose
write was undone is counted again, alone; a compare of the chain's head that fails
counts nothing, and the count waits for the COMMIT."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import AuditEvent, User
from tests.api.ops_support import last_code
from tests.api.test_headless import PHONE, enrol_totp, h, new_user, verify
from tests.api.test_key_count_joined import user_and_checker
from tests.pg.test_key_count_last import _until_a_call_waits_for_a_lock
from tests.pg.test_undone_transaction import against_user_row_then_method_row

ACTOR = Actor(name="t")


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement any engine of this process sends meanwhile."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def _window(clock: FrozenClock) -> Any:
    return clock.now().replace(second=0, microsecond=0)


async def test_a_verify_counts_its_key_in_its_audit_statement(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    totp = pyotp.TOTP(secret)
    r = await verify(client, key, uid, "totp", totp.at(clock.now()))
    assert r.status_code == 200, r.text
    clock.advance(30)  # the next time step, the same minute
    with statements() as seen:
        r = await verify(client, key, uid, "totp", totp.at(clock.now()))
    assert r.status_code == 200, r.text
    # The key's read, then one call that spends the step, adds the event and counts the
    # key (tests/pg/test_spend_rides.py): nothing else (its last use was recorded by the
    # first call, a minute ago at most).
    assert len(seen) == 2, seen
    assert "stepup_spend_and_record" in seen[1], seen
    assert r.headers["RateLimit"].startswith('"key";r=8;')
    async with runtime.read() as db:
        assert await queries.rate_value(db, f"apikey:{row.id}", _window(clock)) == 2


async def test_a_login_from_a_known_device_counts_in_its_audit_statement(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """A verify with the end user's context is audited as a login: from a new device its
    notice is queued after the event, so the count waits for the COMMIT; from a device
    seen before, the event is the last write and counts the call."""
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    totp = pyotp.TOTP(secret)
    context = {"StepUp-End-User-IP": "203.0.113.7",
               "StepUp-End-User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}
    with statements() as seen:
        r = await verify(client, key, uid, "totp", totp.at(clock.now()), context=context)
    assert r.status_code == 200, r.text
    assert any(s.startswith("INSERT INTO rate_counters") for s in seen), seen
    assert any("notification_queue" in s for s in seen), seen  # the new device's notice
    clock.advance(30)
    with statements() as seen:
        r = await verify(client, key, uid, "totp", totp.at(clock.now()), context=context)
    assert r.status_code == 200, r.text
    counting = [s for s in seen if "INSERT INTO rate_counters" in s]
    assert len(counting) == 1 and counting[0].startswith("WITH advanced AS"), seen
    assert not any("notification_queue" in s for s in seen), seen
    async with runtime.read() as db:
        assert await queries.rate_value(db, f"apikey:{row.id}", _window(clock)) == 2
        events = (await db.execute(select(AuditEvent.data).where(
            AuditEvent.user_id == uid, AuditEvent.event == "login.succeeded")
            .order_by(AuditEvent.id))).scalars().all()
        report = await audit.verify_chains(db)
    assert [e.get("new_device") for e in events] == [True, None]
    assert report.ok, report.breaks


async def test_a_codes_method_row_is_written_after_the_user_row_as_everywhere(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """An SMS code's verify leaves its method's last use to the COMMIT's flush, after
    the event that counts the key: the user row before the method row, the order of
    every transaction that changes a method row through the session (switching it,
    say). A transaction in that order, holding the user row and then writing the method
    row while the verify waits for the user row, must not deadlock with it. (Written
    before the event, the method row would be the verify's: PostgreSQL would find the
    cycle and fail the verify.)"""
    _row, admin = await apikeys.create(runtime, "portal", "app", ACTOR)
    uid = await new_user(client, admin)
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment",
                          json={"phone": PHONE}, headers=h(admin))
    assert r.status_code == 202, r.text
    r = await client.post(f"/api/v1/users/{uid}/methods/sms/enrollment/confirm",
                          json={"code": await last_code(client, PHONE, "sms")},
                          headers=h(admin))
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/users/{uid}/challenge",
                          json={"method": "sms", "purpose": "login"}, headers=h(admin))
    assert r.status_code == 202, r.text
    code = await last_code(client, PHONE, "sms")
    clock.advance(60)  # its last use (the enrolment's) a minute ago: the verify sets it
    with statements() as seen:
        r = await against_user_row_then_method_row(
            runtime, uid, "sms", verify(client, admin, uid, "sms", code))
    assert r.status_code == 200, r.text
    counted = next(i for i, s in enumerate(seen) if "INSERT INTO rate_counters" in s)
    assert seen[counted].startswith("WITH advanced AS"), seen
    assert any(s.startswith("UPDATE methods SET last_used_at") for s in seen[counted:]), seen


async def test_a_count_whose_write_was_undone_is_counted_alone(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    uid, _secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    with pytest.raises(LookupError):
        async with apikeys.held(runtime, key, "app", "verify", user_id=uid) as held:
            user = await held.db.get(User, uid)
            assert user is not None
            await audit.record_last(held.db, runtime.clock, ACTOR, "code.verified", user)
            # Counted, in the open transaction, by the event's statement.
            assert await queries.rate_value(held.db, f"apikey:{row.id}",
                                            _window(clock)) == 1
            raise LookupError("the call fails after its last write")
    async with runtime.read() as db:
        # The event went with the failed call; the call is counted all the same.
        assert await queries.rate_value(db, f"apikey:{row.id}", _window(clock)) == 1
        verified = (await db.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.user_id == uid, AuditEvent.event == "code.verified"))).scalar_one()
    assert verified == 0


async def test_verifies_of_one_key_race_on_one_user_and_others_without_deadlock(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """One user's code sent six times with three wrong codes (their failures move the
    user's chain under the verifications: some compares fail and fall back), and three
    other users' codes, all at once, by one key: one success for the user, each code
    single use, every call counted once, every chain whole, and no deadlock (it would
    answer 500 after PostgreSQL's deadlock_timeout)."""
    _row, admin = await apikeys.create(runtime, "portal", "app", ACTOR)
    users = [await new_user(client, admin, external_id=f"client-{n}",
                            email=f"client-{n}@example.com") for n in range(4)]
    secrets = [await enrol_totp(client, admin, uid, clock) for uid in users]
    clock.advance(60 - clock.now().second)  # a minute of our own, past the enrolments
    codes = [pyotp.TOTP(secret).at(clock.now()) for secret in secrets]
    row, key = await apikeys.create(runtime, "checker", "app", ACTOR, scopes=["verify"],
                                    rate_per_minute=1000)
    one, others = users[0], list(zip(users[1:], codes[1:], strict=True))
    calls = ([verify(client, key, one, "totp", codes[0]) for _ in range(6)]
             + [verify(client, key, one, "totp", "000000") for _ in range(3)]
             + [verify(client, key, uid, "totp", code) for uid, code in others])
    answers = await asyncio.gather(*calls)
    got = Counter(r.status_code for r in answers)
    assert got == {200: 1 + len(others), 409: 5, 400: 3}, [r.text for r in answers]
    async with runtime.read() as db:
        assert await queries.rate_value(db, f"apikey:{row.id}", _window(clock)) == len(calls)
        report = await audit.verify_chains(db)
    assert report.ok, report.breaks



async def test_a_compare_that_fails_counts_nothing_and_the_commit_counts(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    """Another transaction's event moves the user's chain while the verification waits
    for it: the verification's compare fails, its statement writes and counts nothing,
    and the event is chained to the new head the usual way, the count at COMMIT. (A
    wrong code first: the right one then has a failure to clear, more than the one
    write whose step would ride in its event, tests/pg/test_spend_rides.py.)"""
    uid, secret, row, key = await user_and_checker(client, runtime, clock, rate=10)
    r = await verify(client, key, uid, "totp", "000000")
    assert r.status_code == 400, r.text
    async with runtime.db() as racing:
        await audit.record(racing, runtime.clock, ACTOR, "account.email_verified", uid)
        call = asyncio.create_task(
            verify(client, key, uid, "totp", pyotp.TOTP(secret).at(clock.now())))
        await _until_a_call_waits_for_a_lock(runtime)
        await racing.commit()
    with statements() as seen:
        r = await call
    assert r.status_code == 200, r.text
    # The count ran on its own, after the event was chained the usual way.
    assert [s for s in seen if s.startswith("INSERT INTO rate_counters")], seen
    async with runtime.read() as db:
        assert await queries.rate_value(db, f"apikey:{row.id}", _window(clock)) == 2
        events = (await db.execute(select(AuditEvent.event).where(
            AuditEvent.user_id == uid).order_by(AuditEvent.id.desc()).limit(2))).all()
        report = await audit.verify_chains(db)
    assert [e[0] for e in events] == ["code.verified", "account.email_verified"]
    assert report.ok, report.breaks
