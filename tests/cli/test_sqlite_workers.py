"""Two workers on one SQLite file, racing over HTTP: each worker runs its statements on
its event loop and waits for the other's write lock there, and still every TOTP step is
accepted once, every spent step has its audit row, and no request fails."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pyotp

from tests.support.server import STEPUP, clean_env, serve, wait_until_up

USERS = 20
PER_USER = 12


async def _race(base: str, key: str, attempts: list[tuple[str, str]]) -> list[int]:
    gate = asyncio.Semaphore(24)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:

        async def one(uid: str, code: str) -> int:
            async with gate:
                r = await http.post(f"/api/v1/users/{uid}/verify",
                                    json={"method": "totp", "code": code})
                return r.status_code

        return list(await asyncio.gather(*(one(u, c) for u, c in attempts)))


def test_two_sqlite_workers_accept_each_step_once(tmp_path: Path) -> None:
    env = clean_env(STEPUP_DATA_DIR=str(tmp_path / "data"))
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "check": True,
           "timeout": 60}
    subprocess.run([*STEPUP, "migrate"], **run)  # type: ignore[call-overload]
    tokens = tmp_path / "tokens.csv"
    subprocess.run([*STEPUP, "bench", "seed", "--users", str(USERS), "--tokens", str(tokens)],
                   **run)  # type: ignore[call-overload]
    out = subprocess.run([*STEPUP, "apikey", "create", "--role", "app", "--name", "race",
                          "--rate", "100000"], **run).stdout  # type: ignore[call-overload]
    found = re.search(r"key:\s+(\S+)", out)
    assert found, out
    secrets = dict(line.split(",") for line in tokens.read_text().splitlines())
    server, base = serve(tmp_path, env)
    try:
        assert wait_until_up(base), "stepup serve did not start"
        now = time.time()
        # Bursts of one user's attempts, all with the same valid code.
        attempts = [(uid, pyotp.TOTP(secret).at(now)) for uid, secret in secrets.items()
                    for _ in range(PER_USER)]
        statuses = asyncio.run(_race(base, found.group(1), attempts))
    finally:
        server.terminate()
        server.wait(timeout=30)
    accepted = Counter(a for a, s in zip(attempts, statuses, strict=True) if s == 200)
    assert set(accepted.values()) == {1} and len(accepted) == USERS, accepted
    # Refused, never failed: the same right code again is "already used" (409).
    assert set(statuses) <= {200, 400, 409, 423}, Counter(statuses)
    with sqlite3.connect(tmp_path / "data" / "stepup.db") as db:
        audited = db.execute("SELECT count(*) FROM audit_events WHERE event = 'code.verified'"
                             ).fetchone()[0]
    assert audited == USERS
