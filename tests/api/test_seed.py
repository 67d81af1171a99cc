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
    assert r.status_code == 400  # seeded steps are single use like any other
