"""Rotating the key ring that seals data at rest (services/rekey.py): every sealed column
moves to the new active key and still opens through the code that uses it; a key is
retired only once nothing uses it, and decrypts nothing afterwards; rotation goes in
pages and never overwrites a value the service rewrote meanwhile. SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update

from stepup.config import ConfigurationError, Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.errors import Conflict, NotFound
from stepup.domain.keyring import KeyRing, KeyRingError
from stepup.domain.policy import Purpose
from stepup.methods import registry
from stepup.methods.totp import _aad as totp_aad
from stepup.services import apikeys, apps, notifications, receipts, rekey, staff, webhooks
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from stepup.store.models import (
    App,
    AuditEvent,
    Base,
    Challenge,
    Method,
    RetiredDataKey,
    Staff,
)
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    auth,
    enable_totp,
    login_token,
    session_for,
    sign_up,
    totp_now,
    verify,
)
from tests.api.oob_support import RU_MOBILE, Stack
from tests.api.test_webauthn import enrol, login_options
from tests.support.passkey import SoftPasskey
from tests.support.providers import ProviderServer

A = "old:" + base64.b64encode(bytes(range(32))).decode()
B = "new:" + base64.b64encode(bytes(range(100, 132))).decode()
ACTOR = Actor(name="test")
HOOK_SECRET = "acme-whsec-0123456789"
STAFF_EMAIL = "sam@example.com"


@asynccontextmanager
async def serving(settings: Settings, clock: FrozenClock, keyring: str
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """StepUp started with ``STEPUP_KEYRING=keyring`` (one instance: every request sees
    the same ring), as a process that starts would: retired keys dropped."""
    from tests.support import instances

    rt = Runtime.build(settings.model_copy(update={"keyring": keyring}), clock)
    try:
        await rekey.apply_retirements(rt)
        async with instances.http_client(rt, count=1) as client:
            yield client, rt
    finally:
        await rt.engine.dispose()


@pytest.fixture
def hooks() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


class Sealed:
    """One value of every sealed kind, made through the code that owns it."""

    jane: str  # a session of jane: TOTP and SMS
    totp: str  # jane's TOTP secret
    code_id: str  # a code to jane's phone, made and not sent yet
    passkey: SoftPasskey  # bob's
    staff_totp: str
    receipt_kid: str
    app_key: str  # an API key of the app "acme"
    created: httpx.Response  # the answer stored for Idempotency-Key "create-1"


async def seal_everything(stack: Stack, hooks: ProviderServer) -> Sealed:
    client, rt, s = stack.client, stack.rt, Sealed()
    await sign_up(client)
    s.jane = await session_for(client)
    s.totp = await enable_totp(client, s.jane, stack.clock)
    # A phone: the method's destination, and notices queued to it and to the e-mail.
    await stack.enable(s.jane, "sms", RU_MOBILE, phone=RU_MOBILE)
    async with rt.db() as db:
        user = await queries.get_user_by_email(db, EMAIL)
        assert user is not None
        row = await queries.get_method(db, user.id, "sms")
        assert row is not None
        made = await registry.get("sms").challenge(rt.method_context(db), user, row,
                                                   Purpose.manage("sms"))
        assert made is not None and made.code_id is not None
        s.code_id = made.code_id
        await db.commit()
    await sign_up(client, "bob@example.com")
    s.passkey = SoftPasskey()
    await enrol(client, await session_for(client, "bob@example.com"), s.passkey)
    s.staff_totp = (await staff.create(rt, ACTOR, email=STAFF_EMAIL, name="Sam",
                                       role="support", password=PASSWORD)).secret
    s.receipt_kid = await receipts.rotate(rt)
    await apps.create(rt, ACTOR, "acme")
    await apps.configure(rt, ACTOR, "acme", webhook_url=f"{hooks.url}/acme",
                         webhook_secret=HOOK_SECRET)
    _row, s.app_key = await apikeys.create(rt, "acme", "app", ACTOR, app="acme")
    s.created = await client.post("/api/v1/users", json={"email": "ann@example.com"},
                                  headers={**auth(s.app_key), "Idempotency-Key": "create-1"})
    assert s.created.status_code == 201, s.created.text
    return s


async def everything_opens(stack: Stack, hooks: ProviderServer, s: Sealed) -> None:
    """Each sealed value, used the way StepUp uses it."""
    client, rt, clock = stack.client, stack.rt, stack.clock
    clock.advance(120)
    # TOTP seed: a login with the authenticator app.
    r = await verify(client, await login_token(client), "totp", totp_now(s.totp, clock))
    assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
    # The phone of the SMS method: a code reaches it.
    sent = len(stack.sms_to(RU_MOBILE))
    assert (await stack.manage_challenge(s.jane, "sms")).status_code == 202
    assert len(stack.sms_to(RU_MOBILE)) == sent + 1
    # Queued notices: they go out, to the e-mail and to the phone.
    assert await notifications.deliver_due(rt) >= 2
    assert len(stack.sms_to(RU_MOBILE)) == sent + 2 and stack.mail_to(EMAIL)
    # The code not sent yet still knows where it goes.
    async with rt.db() as db:
        code = await db.get(Challenge, s.code_id)
        assert code is not None and rt.destinations.read(code) == RU_MOBILE
    # Passkey: a login with it.
    lt = await login_token(client, "bob@example.com")
    r = await verify(client, lt, "webauthn", s.passkey.get(await login_options(client, lt)))
    assert r.status_code == 200, r.text
    # Staff authenticator app: the console's second step.
    half = (await staff.password_step(rt, ACTOR, STAFF_EMAIL, PASSWORD)).login_token
    assert half is not None
    assert await staff.second_factor(rt, ACTOR, half, "totp", totp_now(s.staff_totp, clock))
    # Receipt key: a signature the published key verifies.
    async with rt.db() as db:
        token = await receipts.sign(rt, db, {"sub": "x"})
    head, body, sig = token.split(".")
    [jwk] = [k for k in (await receipts.jwks(rt))["keys"] if k["kid"] == s.receipt_kid]
    Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"])).verify(
        _unb64(sig), f"{head}.{body}".encode())
    # Webhook secret: a test event, signed with it.
    async with rt.db() as db:
        acme = (await apps.named(db, "acme")).id
    before = len(hooks.received)
    await webhooks.send_test(rt, ACTOR, acme)
    assert await webhooks.deliver_due(rt) == 1
    hit = hooks.received[before]
    parts = dict(p.split("=", 1) for p in hit.headers["stepup-signature"].split(","))
    mac = hmac.new(HOOK_SECRET.encode(), parts["t"].encode() + b"." + hit.body, hashlib.sha256)
    assert hmac.compare_digest(mac.hexdigest(), parts["v1"])
    # Stored idempotent answer: the retry gets it back.
    again = await client.post("/api/v1/users", json={"email": "ann@example.com"},
                              headers={**auth(s.app_key), "Idempotency-Key": "create-1"})
    assert again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.content == s.created.content


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_every_column_sealed_with_the_key_ring_is_registered() -> None:
    # A new sealed column (a ``*_kid`` beside its ciphertext) must be added to SEALED, or
    # rotation would leave it behind and retiring its key would lose it.
    kid_columns = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables
                   for c in t.columns if c.name.endswith("_kid")}
    registered = {f"{c.kid.class_.__tablename__}.{c.kid.key}" for c in rekey.SEALED}
    assert kid_columns == registered
    assert len({c.name for c in rekey.SEALED}) == len(rekey.SEALED) == 8


async def test_rotate_then_retire(start_stack: StartStack, clock: FrozenClock,
                                  hooks: ProviderServer, caplog: pytest.LogCaptureFixture
                                  ) -> None:
    old, new = A.split(":")[0], B.split(":")[0]
    stack = await start_stack(keyring=A)
    s = await seal_everything(stack, hooks)
    before = await rekey.census(stack.rt)
    # Every registered column holds values, each sealed with the old key.
    assert all(set(per_kid) == {old} for per_kid in before.values()), before
    assert set(before) == {c.name for c in rekey.SEALED}
    total = sum(n for per_kid in before.values() for n in per_kid.values())

    # The operator puts the new key first and restarts.
    stack = await start_stack(keyring=f"{B},{A}")
    rt = stack.rt
    with pytest.raises(Conflict) as refused:
        await rekey.retire(rt, ACTOR, old)
    assert f"{total} values are still sealed with {old}" in refused.value.detail
    # Jane's authenticator app and the staff member's (a method of their user).
    assert "methods.secret_ct 2" in refused.value.detail
    assert "challenges.destination_ct 1" in refused.value.detail
    with pytest.raises(Conflict, match="active key"):
        await rekey.retire(rt, ACTOR, new)
    with pytest.raises(NotFound):
        await rekey.retire(rt, ACTOR, "typo")

    done = await rekey.rotate(rt, ACTOR)
    assert done.active == new and done.left_behind == {}
    assert {c.name: {new: c.resealed} for c in done.columns} == await rekey.census(rt) == {
        name: {new: per_kid[old]} for name, per_kid in before.items()}
    again = await rekey.rotate(rt, ACTOR)  # nothing left to do
    assert sum(c.resealed for c in again.columns) == 0

    retired = await rekey.retire(rt, ACTOR, old)
    assert retired.newly and retired.dev_file is None  # STEPUP_KEYRING: not a file
    assert not (await rekey.retire(rt, ACTOR, old)).newly
    async with rt.db() as db:
        events = [e.event for e in (await db.execute(
            select(AuditEvent).where(AuditEvent.event.startswith("data_key."))
            .order_by(AuditEvent.id))).scalars()]
    assert events == ["data_key.rotated", "data_key.rotated", "data_key.retired"]

    # Nothing needs the old key any more: a ring without it serves everything.
    await everything_opens(await start_stack(keyring=B), hooks, s)

    # A process started with the old key still configured drops it, saying so; a value
    # sealed with it (put back by hand) no longer opens.
    with caplog.at_level(logging.WARNING, logger="stepup"):
        async with serving(stack.rt.settings, clock, f"{B},{A}") as (_, rt):
            assert rt.keyring.kids == (new,)
            assert any(f"key {old} of the key ring was retired" in r.getMessage()
                       for r in caplog.records)
            user_id, method_id = await staff_method(rt)
            kid, ct = KeyRing.parse(A).encrypt(s.staff_totp.encode(),
                                               totp_aad(user_id, method_id))
            async with rt.db() as db:
                await db.execute(update(Method).where(Method.id == method_id)
                                 .values(secret_kid=kid, secret_ct=ct))
                await db.commit()
            half = (await staff.password_step(rt, ACTOR, STAFF_EMAIL, PASSWORD)).login_token
            assert half is not None
            with pytest.raises(KeyRingError, match="retired"):
                await staff.second_factor(rt, ACTOR, half, "totp",
                                          totp_now(s.staff_totp, clock))
            # Rotation reports it and goes on.
            report = await rekey.rotate(rt, ACTOR)
            [col] = [c for c in report.columns if c.name == "methods.secret_ct"]
            # (Jane's authenticator app, in the same column, is on the new key.)
            assert col.unknown == {old: 1} and col.remaining == {old: 1, new: 1}
            assert report.left_behind == {old: 1}

    # A retired key put first is refused at start.
    with pytest.raises(ConfigurationError, match="was retired"):
        async with serving(stack.rt.settings, clock, f"{A},{B}"):
            pass


async def staff_method(rt: Runtime) -> tuple[str, str]:
    """(user id, method id) of the staff member's authenticator app."""
    async with rt.db() as db:
        row = (await db.execute(select(Method.user_id, Method.id)
                                .join(Staff, Staff.user_id == Method.user_id))).one()
        return str(row[0]), str(row[1])


# --- pages, and values changed meanwhile -----------------------------------------------


async def five_apps(rt: Runtime) -> list[str]:
    names = [f"app{i}" for i in range(5)]
    for name in names:
        await apps.create(rt, ACTOR, name)
        await apps.configure(rt, ACTOR, name, webhook_url="https://hooks.example/x",
                             webhook_secret=f"{name}-secret-0123456789")
    return names


async def webhook_secret(rt: Runtime, name: str) -> tuple[str, str]:
    """(key id, secret) of the app's webhook secret, opened as the sender does."""
    async with rt.db() as db:
        app = (await db.execute(select(App).where(App.name == name))).scalar_one()
    assert app.webhook_secret_kid
    target = webhooks._target(rt, app)
    assert target is not None
    return app.webhook_secret_kid, target[1]


WEBHOOKS = next(c for c in rekey.SEALED if c.name == "apps.webhook_secret_ct")


async def test_rotation_goes_in_pages(settings: Settings, runtime: Runtime,
                                      clock: FrozenClock) -> None:
    async with serving(settings, clock, A) as (_, rt):
        names = await five_apps(rt)
    async with serving(settings, clock, f"{B},{A}") as (_, rt):
        sizes, after = [], None
        while rows := await rekey.read_page(rt, WEBHOOKS, after=after, limit=2):
            sizes.append(len(rows))
            after = rows[-1].key
            assert (await rekey.reseal_page(rt, WEBHOOKS, rows)).resealed == len(rows)
        assert sizes == [2, 2, 1]
        for name in names:
            assert await webhook_secret(rt, name) == ("new", f"{name}-secret-0123456789")


async def test_rotate_with_batch_two(settings: Settings, runtime: Runtime,
                                     clock: FrozenClock) -> None:
    async with serving(settings, clock, A) as (_, rt):
        await five_apps(rt)
    async with serving(settings, clock, f"{B},{A}") as (_, rt):
        done = await rekey.rotate(rt, ACTOR, batch=2)
        [col] = [c for c in done.columns if c.name == WEBHOOKS.name]
        assert col.resealed == 5 and col.remaining == {"new": 5}


async def test_a_value_rewritten_meanwhile_is_not_overwritten(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    async with serving(settings, clock, A) as (_, rt):
        names = await five_apps(rt)
    async with serving(settings, clock, f"{B},{A}") as (_, rt):
        first = await rekey.read_page(rt, WEBHOOKS, after=None, limit=2)
        first_app = await app_named_by_id(rt, first[0].key[0])
        # The serving process changes that app's secret between the read and the write.
        await apps.configure(rt, ACTOR, first_app, webhook_secret="changed-secret-0123456789")
        report = await rekey.reseal_page(rt, WEBHOOKS, first)
        assert report.resealed == 1 and report.changed == 1
        assert await webhook_secret(rt, first_app) == ("new", "changed-secret-0123456789")
        # The next page goes on after it; nothing is left on the old key.
        done = await rekey.rotate(rt, ACTOR, batch=2)
        assert done.left_behind == {}
        for name in names:
            if name != first_app:
                assert await webhook_secret(rt, name) == ("new", f"{name}-secret-0123456789")


async def app_named_by_id(rt: Runtime, app_id: str) -> str:
    async with rt.db() as db:
        return str((await db.execute(select(App.name).where(App.id == app_id))).scalar_one())


async def test_values_that_do_not_open_are_reported_not_fatal(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    async with serving(settings, clock, A) as (_, rt):
        await five_apps(rt)
        async with rt.db() as db:
            rows = (await db.execute(select(App).where(App.name.in_(["app0", "app1"]))
                                     .order_by(App.name))).scalars().all()
            # app1 gets app0's ciphertext (bound to app0: it does not open for app1);
            # app2's key id is one the ring never had.
            await db.execute(update(App).where(App.id == rows[1].id)
                             .values(webhook_secret_ct=rows[0].webhook_secret_ct))
            await db.execute(update(App).where(App.name == "app2")
                             .values(webhook_secret_kid="lost"))
            await db.commit()
    async with serving(settings, clock, f"{B},{A}") as (_, rt):
        done = await rekey.rotate(rt, ACTOR, batch=2)
        [col] = [c for c in done.columns if c.name == WEBHOOKS.name]
        assert (col.resealed, col.unopened, dict(col.unknown)) == (3, 1, {"lost": 1})
        assert col.remaining == {"new": 3, "old": 1, "lost": 1}
        assert done.left_behind == {"old": 1, "lost": 1}
        async with rt.db() as db:
            event = (await db.execute(select(AuditEvent).where(
                AuditEvent.event == "data_key.rotated"))).scalar_one()
        assert event.actor == "test" and event.data["left_behind"] == {"old": 1, "lost": 1}
        with pytest.raises(Conflict):
            await rekey.retire(rt, ACTOR, "old")
        async with rt.db() as db:
            assert (await db.execute(select(RetiredDataKey))).first() is None


async def test_a_starting_app_drops_a_retired_key(settings: Settings, runtime: Runtime,
                                                  clock: FrozenClock) -> None:
    from stepup.web.app import create_app

    async with serving(settings, clock, f"{B},{A}") as (_, rt):
        await rekey.retire(rt, ACTOR, "old")
    started = Runtime.build(settings.model_copy(update={"keyring": f"{B},{A}"}), clock)
    assert started.keyring.kids == ("new", "old")
    app = create_app(started.settings, runtime=started, migrate_on_start=False)
    async with app.router.lifespan_context(app):
        assert started.keyring.kids == ("new",)
