#!/usr/bin/env python3
"""Instructions per call: a cost figure that the machine's load cannot move.

    python bench/instructions.py [--db sqlite|postgres] [verify login key-check ...]

CPU time per request (bench/cpu.py) moves by half from one run to the next on a shared
machine: another process on the sibling hyperthread, or on the host, slows every
instruction down. The number of instructions does not change. This script counts them
with valgrind (Debian's ``valgrind``; ``cachegrind`` without cache simulation): it runs
one process that builds the app on a fresh SQLite file (the pollers' intervals
lengthened so that they stay out of the count), seeds users, an app key and login
flows, freezes what exists (as ``stepup serve``'s workers do), then makes K calls; it
runs it for K = 20 and K = 120 and divides the difference by 100. The calls:

- ``verify``: ``POST /api/v1/users/{id}/verify`` through the whole ASGI app (every
  middleware, FastAPI, the key check, the verification), without a server or client;
- ``login``: ``POST /api/v1/login/verify`` the same way;
- ``key-check``: ``services.apikeys.authenticate`` alone (the key's transaction);
- ``verification``: ``services.headless.verify`` alone (the verification's
  transaction);
- ``login-step``: ``services.login.verify`` alone.

``--db postgres`` counts the same calls on a throwaway PostgreSQL cluster
(tests/support/pg.py; a new one for each count, its binaries found as the test suite
finds them): the instructions of the worker's own process, its driver (asyncpg) and
socket calls included; the server's work, another process, is not.

``python bench/instructions.py --profile verify [K]`` runs K calls (200 by default, at
most 400) under cProfile instead, with the same set-up, and prints the top functions by
cumulative time: where the instructions go.

uvicorn's share (HTTP parsing, the socket) is not in these figures. ``PYTHONPATH``
selects the code: ``PYTHONPATH=/tmp/old/src python bench/instructions.py`` counts an
older tree (``git archive``) with the same script.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CALLS = ("verify", "login", "key-check", "verification", "login-step")
DATABASES = ("sqlite", "postgres")
ROOT = Path(__file__).resolve().parent.parent
FEW, MANY = 20, 120
USERS = 400


async def _asgi(app: Any, path: str, body: dict[str, Any], headers: dict[str, str]
                ) -> int:
    raw = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode()),
                         *((k.encode(), v.encode()) for k, v in headers.items())]}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _calls(call: str, count: int, profiler: cProfile.Profile | None = None) -> None:
    from stepup.config import Settings
    from stepup.methods.totp import code_at, time_step
    from stepup.services import apikeys, headless, login, seed
    from stepup.services.runtime import Actor
    from stepup.web.app import create_app

    work = Path(os.environ["STEPUP_DATA_DIR"])  # removed by whoever made it (_env)
    app = create_app(Settings.load())
    rt = app.state.runtime
    async with app.router.lifespan_context(app):
        tokens, flows = work / "tokens.csv", work / "flows.csv"
        await seed.seed_totp_users(rt, 2 * USERS, tokens)
        await seed.seed_login_flows(rt, tokens, flows, USERS)
        _, key = await apikeys.create(rt, "bench", "app", Actor(name="cli"),
                                      rate_per_minute=10**8)
        users = [line.split(",") for line in tokens.read_text().split()][USERS:]
        opened = [line.split(",") for line in flows.read_text().split()]
        portal, person = Actor(name="app:bench", app_id="default"), Actor(
            ip="127.0.0.1", user_agent="bench")

        def code(secret: str) -> str:
            return code_at(secret, time_step(datetime.now(UTC)))

        gc.collect()
        gc.freeze()
        if profiler is not None:
            profiler.enable()
        for i in range(count):
            (uid, secret), (flow, flow_secret) = users[i], opened[i]
            if call == "verify":
                status = await _asgi(app, f"/api/v1/users/{uid}/verify",
                                     {"method": "totp", "code": code(secret)},
                                     {"authorization": f"Bearer {key}"})
            elif call == "login":
                status = await _asgi(app, "/api/v1/login/verify",
                                     {"login_token": flow, "method": "totp",
                                      "code": code(flow_secret)}, {"user-agent": "bench"})
            elif call == "key-check":
                await apikeys.authenticate(rt, key, "app", "verify", user_id=uid)
                status = 200
            elif call == "verification":
                await headless.verify(rt, portal, uid, "totp", code(secret), "login")
                status = 200
            else:
                await login.verify(rt, person, flow, "totp", code(flow_secret))
                status = 200
            if status != 200:
                raise SystemExit(f"{call}: answered {status}")
        if profiler is not None:
            profiler.disable()


@contextmanager
def _env(db: str) -> Iterator[dict[str, str]]:
    """The environment of one counted process: a data directory of its own and, on
    PostgreSQL, a cluster of its own; both removed afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
    env.update(PYTHONHASHSEED="0", STEPUP_DATA_DIR=tempfile.mkdtemp(prefix="stepup-instr-"),
               STEPUP_WEBHOOK_POLL_SECONDS="36000",
               STEPUP_NOTIFICATION_POLL_SECONDS="36000",
               STEPUP_RECOVERY_POLL_SECONDS="36000")
    try:
        if db == "postgres":
            sys.path.insert(0, str(ROOT))
            from tests.support.pg import ThrowawayPostgres

            with ThrowawayPostgres() as pg:
                env["STEPUP_DATABASE_URL"] = pg.dsn_async
                # Only SQLite is migrated when the app starts.
                subprocess.run([sys.executable, "-m", "stepup.cli", "migrate"], env=env,
                               check=True, capture_output=True)
                yield env
        else:
            yield env
    finally:
        shutil.rmtree(env["STEPUP_DATA_DIR"], ignore_errors=True)


def _profile(call: str, count: int, db: str, lines: int = 40) -> None:
    """cProfile ``count`` calls (not the set-up) in this process; the top functions by
    cumulative time. cProfile inflates small Python calls: read shares, not times."""
    profiler = cProfile.Profile()
    with _env(db) as env:
        os.environ.clear()
        os.environ.update(env)
        asyncio.run(_calls(call, count, profiler))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(lines)


def _count(call: str, count: int, db: str) -> int:
    with _env(db) as env:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                              "--cachegrind-out-file=/dev/null", sys.executable, __file__,
                              "--inner", call, str(count)],
                             env=env, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--inner"]:
        asyncio.run(_calls(args[1], int(args[2])))
        return
    db = "sqlite"
    if args[:1] == ["--db"]:
        if args[1:2] == [] or args[1] not in DATABASES:
            raise SystemExit(f"--db: choose from {', '.join(DATABASES)}")
        db, args = args[1], args[2:]
    if args[:1] == ["--profile"]:
        _profile(args[1], int(args[2]) if len(args) > 2 else USERS // 2, db)
        return
    calls = args or list(CALLS)
    unknown = set(calls) - set(CALLS)
    if unknown:
        raise SystemExit(f"unknown call(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(CALLS)}")
    for call in calls:
        per_call = (_count(call, MANY, db) - _count(call, FEW, db)) / (MANY - FEW)
        print(f"{call:14} {per_call / 1e6:6.2f} M instructions per call ({db})",
              flush=True)


if __name__ == "__main__":
    main()
