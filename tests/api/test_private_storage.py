"""Destinations at rest (issue #14, item 7): the phones and e-mail addresses of methods
are sealed with the key ring in methods, codes and the notice queue; a code or a notice
forgets its destination once it is out; the send caps count per destination under its
keyed hash. Every column of every row is read back (SQLite and PostgreSQL), and on
SQLite the database file itself: no phone in its bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from stepup.config import Settings
from stepup.domain.policy import Purpose
from stepup.methods import registry
from stepup.services import challenges, notifications
from stepup.services.runtime import Actor
from stepup.store import migrate, queries
from stepup.store.models import Base, Challenge, Method, NotificationQueue, RateCounter
from tests.api.conftest import StartStack
from tests.api.helpers import EMAIL, PASSWORD, PIN, enable_totp, session_for
from tests.api.oob_support import RU_MOBILE, Stack, closed_port

BACKUP_EMAIL = "jane.backup@example.net"
# How a destination could stand in clear: E.164, its digits, its national digits.
CLEAR = (RU_MOBILE, RU_MOBILE.lstrip("+"), "9161234567", BACKUP_EMAIL)


async def signed_in(stack: Stack, email: str = EMAIL) -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": PASSWORD, "pin": PIN, "language": "en"})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, email)


async def private_stack(start_stack: StartStack, settings: Settings, tmp_path: Path,
                        **overrides: Any) -> Stack:
    """On SQLite a database file of its own: the shared one keeps, in its free pages,
    what earlier tests wrote to the development outbox. On PostgreSQL the shared one."""
    if not settings.effective_database_url.startswith("sqlite"):
        return await start_stack(**overrides)
    stack = await start_stack(database_url=None, data_dir=tmp_path / "private", **overrides)
    await migrate.upgrade(stack.rt.engine)
    return stack


async def columns_in_clear(stack: Stack) -> list[str]:
    """``table.column`` of every stored value that holds a destination in clear."""
    found = []
    async with stack.rt.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{table.name}.{column}" for clear in CLEAR
                              if clear.encode() in blob]
    return found


def _checkpoint(conn: Connection) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cursor.close()


async def file_bytes(stack: Stack) -> bytes:
    """The SQLite database as it lies on disk, its write-ahead log checkpointed (and
    whatever the log still holds)."""
    async with stack.rt.engine.connect() as conn:
        await conn.run_sync(_checkpoint)
    path = Path(stack.rt.settings.effective_database_url.split(":///", 1)[1])
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_no_destination_in_clear_after_codes_and_notices(
        start_stack: StartStack, settings: Settings, tmp_path: Path) -> None:
    stack = await private_stack(start_stack, settings, tmp_path)
    token = await signed_in(stack)
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    assert await notifications.deliver_due(stack.rt) == 2  # to the e-mail and the phone
    # An e-mail method at another address; its notices stay queued (sealed).
    await stack.enable(token, "email", BACKUP_EMAIL, email=BACKUP_EMAIL)
    assert (await stack.manage_challenge(token, "sms")).status_code == 202
    assert len(stack.sms_to(RU_MOBILE)) == 3  # two codes and a notice reached the phone

    assert await columns_in_clear(stack) == []
    if stack.rt.engine.dialect.name == "sqlite":
        raw = await file_bytes(stack)
        assert [c for c in CLEAR if c.encode() in raw] == []
        assert EMAIL.encode() in raw  # the account e-mail, the login name, stays in clear
    async with stack.rt.db() as db:
        rows = (await db.execute(select(Method).order_by(Method.type))).scalars().all()
    assert [(r.type, stack.rt.destinations.read(r)) for r in rows] == [
        ("email", BACKUP_EMAIL), ("sms", RU_MOBILE)]


async def test_codes_and_notices_forget_their_destination_once_out(stack: Stack) -> None:
    rt = stack.rt
    token = await signed_in(stack)
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    async with rt.db() as db:
        waiting = (await db.execute(select(NotificationQueue))).scalars().all()
    assert sorted((n.channel, rt.destinations.read(n)) for n in waiting) == [
        ("email", EMAIL), ("sms", RU_MOBILE)]
    assert all(n.destination_kid == rt.keyring.active_kid for n in waiting)
    assert await notifications.deliver_due(rt) == 2
    async with rt.db() as db:
        sent = (await db.execute(select(NotificationQueue))).scalars().all()
    assert [(n.sent_at is not None, n.destination_kid, n.destination_ct) for n in sent] == [
        (True, None, None)] * 2

    # A code made and not yet delivered holds its destination, sealed for its row.
    purpose = Purpose.manage("sms")
    async with rt.db() as db:
        user = await queries.get_user_by_email(db, EMAIL)
        assert user is not None
        row = await queries.get_method(db, user.id, "sms")
        assert row is not None
        made = await registry.get("sms").challenge(rt.method_context(db), user, row, purpose)
        assert made is not None and made.code_id is not None
        await db.commit()
    async with rt.db() as db:
        code = await db.get(Challenge, made.code_id)
        assert code is not None and code.sent_at is None
        assert rt.destinations.read(code) == RU_MOBILE
    await challenges.deliver(rt, Actor(), user.id, "sms", made, purpose.value)
    async with rt.db() as db:
        codes = (await db.execute(select(Challenge).where(
            Challenge.purpose != "verify:email"))).scalars().all()  # not the sign-up's
    # Out: only the keyed hash stays, binding each code to the phone it went to.
    assert {(c.sent_at is not None, c.destination_ct, c.destination_hash) for c in codes} == {
        (True, None, rt.destinations.hash(RU_MOBILE))}
    assert len(codes) == 2
    # And the code that went out still serves, bound to that phone.
    r = await stack.switch(token, "sms", stack.last_code("sms", RU_MOBILE), withdrawal=True)
    assert r.status_code == 200, r.text


async def test_a_notice_given_up_forgets_its_recipient(start_stack: StartStack) -> None:
    stack = await start_stack(smtp_url=f"smtp://127.0.0.1:{closed_port()}",
                              notification_max_attempts=1)
    token = await signed_in(stack)
    await enable_totp(stack.client, token, stack.clock)
    assert await notifications.deliver_due(stack.rt) == 0
    async with stack.rt.db() as db:
        [notice] = (await db.execute(select(NotificationQueue))).scalars().all()
    assert notice.last_error and notice.next_attempt_at is None and notice.sent_at is None
    assert (notice.destination_kid, notice.destination_ct) == (None, None)


async def test_two_accounts_share_the_cap_of_one_phone(start_stack: StartStack) -> None:
    stack = await start_stack(sends_per_destination_per_hour=2)
    jane, omar = await signed_in(stack), await signed_in(stack, "omar@example.com")
    assert (await stack.enroll(jane, "sms", phone=RU_MOBILE)).status_code == 202
    assert (await stack.enroll(omar, "sms", phone=RU_MOBILE)).status_code == 202
    stack.clock.advance(61)
    r = await stack.enroll(omar, "whatsapp", phone=RU_MOBILE)
    assert r.status_code == 429 and r.json()["code"] == "send_cap_reached", r.text
    assert len(stack.sms_to(RU_MOBILE)) == 2 and stack.whatsapp_to(RU_MOBILE) == []
    async with stack.rt.db() as db:
        counters = (await db.execute(select(RateCounter))).scalars().all()
    # (The sign-ups' e-mail verifications are not charged: their counters stay at 0.)
    per_destination = [(c.key, c.count) for c in counters
                       if c.key.startswith("send-dest:") and c.count]
    # One counter for the phone, named by its keyed hash, never by the number.
    assert per_destination == [(f"send-dest:{stack.rt.destinations.hash(RU_MOBILE)}", 2)]
    assert not [c.key for c in counters for clear in CLEAR if clear in c.key]
