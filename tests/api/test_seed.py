"""``stepup bench seed``: seeded users verify exactly like enrolled ones, and have the
first event of an account's audit chain, from the address the benchmark runs on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, audit, seed
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, NotificationQueue
from tests.support.instances import CLIENT


async def test_seeded_users_verify_through_the_api(client: httpx.AsyncClient, runtime: Runtime,
                                                   clock: FrozenClock, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    assert await seed.seed_totp_users(runtime, 12, tokens) == 12
    lines = [line.split(",") for line in tokens.read_text().splitlines()]
    assert len(lines) == 12 and len({uid for uid, _ in lines}) == 12
    _row, key = await apikeys.create(runtime, "bench", "app", Actor(name="t"))
    uid, secret = lines[-1]
    code = pyotp.TOTP(secret).at(clock.now())
    headers = {"Authorization": f"Bearer {key}"}
    r = await client.post(f"/api/v1/users/{uid}/verify", json={"method": "totp", "code": code},
                          headers=headers)
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    r = await client.post(f"/api/v1/users/{uid}/verify", json={"method": "totp", "code": code},
                          headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "code_already_used"  # single use


async def test_seeded_login_flows_take_the_second_step(client: httpx.AsyncClient,
                                                       runtime: Runtime, clock: FrozenClock,
                                                       tmp_path: Path) -> None:
    tokens, flows = tmp_path / "tokens.csv", tmp_path / "flows.csv"
    await seed.seed_totp_users(runtime, 3, tokens)
    assert await seed.seed_login_flows(runtime, tokens, flows, 2) == 2
    lines = [line.split(",") for line in flows.read_text().splitlines()]
    assert len(lines) == 2
    token, secret = lines[0]
    body = {"login_token": token, "method": "totp", "code": pyotp.TOTP(secret).at(clock.now())}
    r = await client.post("/api/v1/login/verify", json=body)
    assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
    r = await client.post("/api/v1/login/verify", json=body)
    assert r.status_code == 401, r.text  # the flow is spent


@pytest.mark.parametrize("signed_up_from", [CLIENT[0], None])
async def test_a_seeded_login_is_from_the_device_the_account_was_made_on(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, tmp_path: Path,
        signed_up_from: str | None) -> None:
    """The benchmark's login step is a returning user's: no "new device" notice, since
    the account was made from the address it logs in from (127.0.0.1 there; the test
    client's here), with no user agent, as wrk sends none. With no address, it is a
    first login from a new device, and told."""
    tokens, flows = tmp_path / "tokens.csv", tmp_path / "flows.csv"
    await seed.seed_totp_users(runtime, 3, tokens, signed_up_from=signed_up_from)
    async with runtime.db() as db:
        created = (await db.execute(select(AuditEvent).where(
            AuditEvent.event == "account.created"))).scalars().all()
    assert len(created) == 3 and {e.ip for e in created} == {signed_up_from}
    assert (await audit.verify(runtime)).ok  # each the start of an intact chain
    await seed.seed_login_flows(runtime, tokens, flows, 1)
    token, secret = flows.read_text().split()[0].split(",")
    body = {"login_token": token, "method": "totp", "code": pyotp.TOTP(secret).at(clock.now())}
    r = await client.post("/api/v1/login/verify", json=body, headers={"User-Agent": ""})
    assert r.status_code == 200, r.text
    async with runtime.db() as db:
        [login] = (await db.execute(select(AuditEvent).where(
            AuditEvent.event == "login.succeeded"))).scalars().all()
        notices = (await db.execute(select(NotificationQueue.kind))).scalars().all()
    assert login.ip == CLIENT[0] and not login.user_agent
    if signed_up_from:
        assert "new_device" not in login.data and notices == []
    else:
        assert login.data["new_device"] is True and "login.new_device" in notices
    assert (await audit.verify(runtime)).ok
