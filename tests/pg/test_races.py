"""Four worker processes on one PostgreSQL, hammered over HTTP: every code is accepted at
most once, rate limits hold across workers, and ``kill -9`` of a worker mid-load leaves
no half-written state (each spent code has its audit row, written in the same
transaction).

10,060 racing attempts in all: 6,800 TOTP (40 users × 170, RACE_PER_USER), 960 backup
codes, 2,000 SMS codes and 300 calls against a key's rate limit. The client keeps 48
requests in flight, in bursts of one user's attempts, so each code races itself across
the workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from stepup.config import Settings
from stepup.services import apikeys, apps, methods, users
from stepup.services.runtime import Actor, Runtime
from stepup.store import codes as code_store
from stepup.store import migrate
from stepup.store.models import AuditEvent, BackupCode, Challenge
from tests.support.pg import ThrowawayPostgres
from tests.support.server import clean_env, free_port, wait_until_up

USERS = 40
WORKERS = 4
IN_FLIGHT = 48
BURST = 10  # TOTP attempts of one user sent back to back
ACTOR = Actor(name="race-setup")


@dataclass
class Fixture:
    base: str
    key: str
    slow_key: str
    rt: Runtime
    server: subprocess.Popen[bytes]
    totp: dict[str, str] = field(default_factory=dict)  # user id → secret
    backup: dict[str, list[str]] = field(default_factory=dict)
    sms: dict[str, str] = field(default_factory=dict)  # user id → phone


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres() as pg:
        yield pg


async def _setup(rt: Runtime) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    totp: dict[str, str] = {}
    backup: dict[str, list[str]] = {}
    sms: dict[str, str] = {}
    # The users of the app "default", where the race keys are made.
    app_id = (await apps.for_new_key(rt, ACTOR, None)).id
    for i in range(USERS):
        for kind in ("totp", "backup", "sms"):
            user, _ = await users.create_or_fetch(rt, ACTOR, app_id,
                                                  email=f"{kind}{i}@example.com",
                                                  external_id=f"{kind}-{i}")
            if kind == "totp":
                start = await methods.begin_enrollment(rt, ACTOR, user.id, "totp", None, {},
                                                       on_behalf=True)
                secret = parse_qs(urlparse(start.body.otpauth_uri).query)["secret"][0]
                await methods.confirm_enrollment(rt, ACTOR, user.id, "totp",
                                                 pyotp.TOTP(secret).now())
                totp[user.id] = secret
            elif kind == "backup":
                start = await methods.begin_enrollment(rt, ACTOR, user.id, "backup_codes", None,
                                                       {}, on_behalf=True)
                backup[user.id] = list(start.body.codes)
            else:
                phone = f"+7916{1000000 + i:07d}"
                await methods.begin_enrollment(rt, ACTOR, user.id, "sms", None,
                                               {"phone": phone}, on_behalf=True)
                code = await _last_code(rt, phone)
                await methods.confirm_enrollment(rt, ACTOR, user.id, "sms", code)
                sms[user.id] = phone
    return totp, backup, sms


async def _last_code(rt: Runtime, phone: str) -> str:
    async with rt.db() as db:
        rows = await code_store.outbox_for(db, phone, limit=1)
    m = re.search(r"#(\d{6})", rows[0].body)
    assert m
    return m.group(1)


@pytest.fixture(scope="module")
def served(cluster: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Fixture]:
    data = tmp_path_factory.mktemp("race")
    settings = Settings(data_dir=data, database_url=cluster.dsn_async,
                        sends_per_destination_per_hour=1000, sends_per_account_per_hour=1000,
                        sends_per_ip_per_hour=100000, db_pool_size=10, db_max_overflow=10)

    async def prepare() -> tuple[Runtime, Any]:
        rt = Runtime.build(settings)
        await migrate.upgrade(rt.engine)
        made = await _setup(rt)
        _r, key = await apikeys.create(rt, "race", "app", ACTOR, rate_per_minute=1_000_000)
        _r, slow = await apikeys.create(rt, "slow", "app", ACTOR, rate_per_minute=100)
        return rt, (made, key, slow)

    loop = asyncio.new_event_loop()
    rt, ((totp, backup, sms), key, slow) = loop.run_until_complete(prepare())
    port = free_port()
    env = clean_env(STEPUP_DATA_DIR=str(data), STEPUP_DATABASE_URL=cluster.dsn_async,
                    STEPUP_SENDS_PER_DESTINATION_PER_HOUR="1000",
                    STEPUP_SENDS_PER_ACCOUNT_PER_HOUR="1000",
                    STEPUP_SENDS_PER_IP_PER_HOUR="100000", STEPUP_DB_POOL_SIZE="10",
                    STEPUP_DB_MAX_OVERFLOW="10")
    log = (data / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "stepup.cli", "serve", "--port", str(port),
                               "--workers", str(WORKERS)], env=env, cwd=data, stdout=log,
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(base, seconds=60):
            pytest.fail("the server did not start: " + (data / "server.log").read_text())
        yield Fixture(base, key, slow, rt, server, totp, backup, sms)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        loop.run_until_complete(rt.engine.dispose())
        loop.close()
        log.close()


@pytest.fixture
async def http(served: Fixture) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=48, max_keepalive_connections=48)
    # Waiting for one of the 48 connections is queueing, not a failure: no pool timeout.
    timeout = httpx.Timeout(30.0, pool=None)
    async with httpx.AsyncClient(base_url=served.base, limits=limits, timeout=timeout,
                                 headers={"Authorization": f"Bearer {served.key}"}) as c:
        yield c


@pytest.fixture
async def db(served: Fixture) -> AsyncIterator[Runtime]:
    """A runtime on this test's event loop, to read what the workers wrote."""
    rt = Runtime.build(served.rt.settings)
    yield rt
    await rt.engine.dispose()


async def _verify(http: httpx.AsyncClient, uid: str, method: str, code: str) -> int:
    try:
        r = await http.post(f"/api/v1/users/{uid}/verify", json={"method": method,
                                                                 "code": code})
        if os.environ.get("RACE_DEBUG") and r.status_code == 400:
            print("400", r.text)
    except httpx.TransportError as exc:
        if os.environ.get("RACE_DEBUG"):
            print("transport error", repr(exc))
        return -1  # the worker died under us: outcome unknown
    return r.status_code


async def _race(http: httpx.AsyncClient, method: str, attempts: list[tuple[str, str]]
                ) -> list[int]:
    """Send the attempts in order, IN_FLIGHT at a time; the status of each.

    Bounded on our side: handed thousands of requests at once, httpx's pool spends its
    time scanning its own queue (minutes for 7,000) and the codes expire meanwhile.
    """
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(uid: str, code: str) -> int:
        async with gate:
            return await _verify(http, uid, method, code)

    return list(await asyncio.gather(*(one(uid, code) for uid, code in attempts)))


def _workers(server: subprocess.Popen[bytes]) -> list[int]:
    """The worker processes (not multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True)
    pids = []
    for pid in (int(p) for p in out.stdout.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


async def _count(rt: Runtime, model: Any, *conds: Any) -> int:
    async with rt.db() as db:
        return int((await db.execute(select(func.count()).select_from(model).where(*conds)))
                   .scalar_one())


async def test_totp_steps_are_accepted_once_even_when_a_worker_is_killed(
        served: Fixture, http: httpx.AsyncClient, db: Runtime) -> None:
    # The next time step: valid now (window ±1) and never used by the set-up.
    upcoming = time.time() + 30
    per_user = int(os.environ.get("RACE_PER_USER", "170"))
    # Bursts of one user's attempts, round-robin over users: the attempts of a burst
    # race each other across the workers, and every user comes back through the run.
    attempts = [(uid, pyotp.TOTP(secret).at(upcoming))
                for _ in range(per_user // BURST) for uid, secret in served.totp.items()
                for _ in range(BURST)]
    assert len(attempts) == USERS * (per_user // BURST * BURST)

    async def killer() -> None:
        await asyncio.sleep(0.5)
        victims = _workers(served.server)
        assert len(victims) == WORKERS, victims
        os.kill(victims[0], signal.SIGKILL)

    results, _ = await asyncio.gather(_race(http, "totp", attempts), killer())
    statuses = Counter(results)
    accepted = Counter(a for a, status in zip(attempts, results, strict=True) if status == 200)
    assert all(n == 1 for n in accepted.values()), accepted.most_common(3)
    # The service kept answering: the losers were told why, not failed — the code was
    # already used (not counted), or, late in the run, its step left the window.
    assert statuses[200] >= USERS // 2, statuses
    assert statuses[409] > 0 and set(statuses) <= {200, 400, 409, 423, -1}, statuses
    # Every acceptance, seen or lost with the worker, left exactly one audit row, and
    # none was accepted twice.
    for uid in served.totp:
        audited = await _count(db, AuditEvent, AuditEvent.user_id == uid,
                               AuditEvent.event == "code.verified")
        assert accepted[(uid, pyotp.TOTP(served.totp[uid]).at(upcoming))] <= audited <= 1
    # The supervisor replaced the dead worker; the service answers normally.
    await asyncio.sleep(2)
    assert (await http.get("/readyz")).status_code == 200
    assert len(_workers(served.server)) == WORKERS


async def test_each_backup_code_is_accepted_once(served: Fixture, http: httpx.AsyncClient,
                                                 db: Runtime) -> None:
    attempts = [(uid, c) for uid, cs in served.backup.items() for c in cs[:2] for _ in range(12)]
    assert len(attempts) == USERS * 24
    results = await _race(http, "backup_codes", attempts)
    accepted = Counter(a for a, s in zip(attempts, results, strict=True) if s == 200)
    assert accepted and all(n == 1 for n in accepted.values())
    used = await _count(db, BackupCode, BackupCode.used_at.is_not(None))
    audited = await _count(db, AuditEvent, AuditEvent.event == "code.verified",
                           AuditEvent.user_id.in_(list(served.backup)))
    assert used == audited == sum(accepted.values())


async def test_each_sms_code_is_accepted_once(served: Fixture, http: httpx.AsyncClient,
                                              db: Runtime) -> None:
    for uid in served.sms:
        r = await http.post(f"/api/v1/users/{uid}/challenge", json={"method": "sms",
                                                                    "purpose": "login"})
        assert r.status_code == 202, r.text
    sent = {uid: await _last_code(db, phone) for uid, phone in served.sms.items()}
    attempts = [(uid, code) for uid, code in sent.items() for _ in range(50)]
    results = await _race(http, "sms", attempts)
    accepted = Counter(a for a, s in zip(attempts, results, strict=True) if s == 200)
    assert len(accepted) == USERS and all(n == 1 for n in accepted.values())
    consumed = await _count(db, Challenge, Challenge.purpose == "login",
                            Challenge.user_id.in_(list(served.sms)),
                            Challenge.attempts < 5, Challenge.used_at.is_not(None))
    assert consumed >= USERS


async def test_a_key_rate_limit_holds_across_workers(served: Fixture) -> None:
    second = time.gmtime().tm_sec
    if second > 45:  # keep the burst inside one minute window
        await asyncio.sleep(61 - second)
    uid = next(iter(served.totp))
    async with httpx.AsyncClient(base_url=served.base, timeout=30,
                                 headers={"Authorization": f"Bearer {served.slow_key}"}) as c:
        results = await asyncio.gather(*(c.get(f"/api/v1/users/{uid}/methods")
                                         for _ in range(300)))
    statuses = Counter(r.status_code for r in results)
    assert statuses[200] == 100 and statuses[429] == 200, statuses


async def test_a_key_rate_limit_holds_across_workers_on_verify(served: Fixture,
                                                               db: Runtime) -> None:
    """Verify counts its key's call last, in the verification's own COMMIT: racing
    across the workers, exactly the rate's worth of calls is answered, and a call
    refused over the rate left no failure behind."""
    _r, key = await apikeys.create(db, "slow verify", "app", ACTOR, rate_per_minute=100)
    second = time.gmtime().tm_sec
    if second > 45:  # keep the burst inside one minute window
        await asyncio.sleep(61 - second)
    since = datetime.now(UTC)
    users = list(served.totp)
    async with httpx.AsyncClient(base_url=served.base, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as c:
        results = await asyncio.gather(*(
            c.post(f"/api/v1/users/{users[i % len(users)]}/verify",
                   json={"method": "totp", "code": "000000"}) for i in range(300)))
    statuses = Counter(r.status_code for r in results)
    assert statuses[429] == 200 and set(statuses) <= {400, 423, 429}, statuses
    recent = (AuditEvent.user_id.in_(users), AuditEvent.created_at >= since)
    failed = await _count(db, AuditEvent, AuditEvent.event == "code.failed", *recent)
    locked = await _count(db, AuditEvent, AuditEvent.event.in_(["method.locked",
                                                                "account.locked"]), *recent)
    # Each wrong code answered 400 recorded its failure, as did each that set a lock
    # (a 423 on a method already locked records none): none of the 429s did.
    assert failed == statuses[400] + locked, (failed, locked, statuses)
