"""``stepup bench seed``: seeded users verify exactly like enrolled ones."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyotp

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, seed
from stepup.services.runtime import Actor, Runtime


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
