#!/usr/bin/env python3
"""A verify's API key counted by its audit statement, against counted at its COMMIT, on
PostgreSQL: the two alternated call by call in one process, so that the host's drift
(on a shared machine one run's figure moves by a third from the next) falls on both.

    python bench/pg_count_ab.py [--calls 3000]

A throwaway cluster, ``stepup bench seed``'s users and an app key; then ``--calls``
verifies through the whole ASGI app (``instructions._asgi``: no server, no client), c = 1,
each on another user. Every other call has ``audit.record_last`` (the event's statement
counts the call: one round trip fewer) replaced by ``audit.record`` (the count runs inside
the COMMIT, as before 2026-12-04). Prints each variant's wall and CPU time a call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]


async def run(calls: int) -> dict[str, tuple[list[float], list[float]]]:
    from instructions import _asgi

    from stepup.config import Settings
    from stepup.methods.totp import code_at, time_step
    from stepup.services import apikeys, audit, seed
    from stepup.services.runtime import Actor
    from stepup.store import migrate
    from stepup.web.app import create_app

    app = create_app(Settings.load())
    rt = app.state.runtime
    await migrate.upgrade(rt.engine)
    results: dict[str, tuple[list[float], list[float]]] = {
        "count at COMMIT": ([], []), "count in the audit statement": ([], [])}
    async with app.router.lifespan_context(app):
        tokens = Path(tempfile.mkdtemp(prefix="stepup-ab-")) / "tokens.csv"
        await seed.seed_totp_users(rt, calls + 50, tokens)
        _, key = await apikeys.create(rt, "bench", "app", Actor(name="bench"),
                                      rate_per_minute=10**8)
        users = [line.split(",")[:2] for line in tokens.read_text().split()]
        fused = audit.record_last

        async def at_commit(*args: Any, **data: Any) -> None:
            await audit.record(*args, **data)

        async def one(uid: str, secret: str) -> None:
            code = code_at(secret, time_step(datetime.now(UTC)))
            status = await _asgi(app, f"/api/v1/users/{uid}/verify",
                                 {"method": "totp", "code": code},
                                 {"authorization": f"Bearer {key}"})
            assert status == 200, status

        for uid, secret in users[calls:]:  # warm-up
            await one(uid, secret)
        for i, (uid, secret) in enumerate(users[:calls]):
            name = "count at COMMIT" if i % 2 else "count in the audit statement"
            audit.record_last = at_commit if i % 2 else fused
            wall, cpu = time.perf_counter(), time.process_time()
            await one(uid, secret)
            results[name][0].append(1000 * (time.perf_counter() - wall))
            results[name][1].append(1000 * (time.process_time() - cpu))
        audit.record_last = fused
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args()
    from tests.support.pg import ThrowawayPostgres

    with ThrowawayPostgres() as pg:
        os.environ.update(STEPUP_DATABASE_URL=pg.dsn_async,
                          STEPUP_DATA_DIR=tempfile.mkdtemp(prefix="stepup-ab-data-"),
                          STEPUP_WEBHOOK_POLL_SECONDS="36000",
                          STEPUP_NOTIFICATION_POLL_SECONDS="36000",
                          STEPUP_RECOVERY_POLL_SECONDS="36000")
        results = asyncio.run(run(args.calls))
    print("| variant | wall ms a call (mean / median) | CPU ms a call (mean) |")
    print("|---|---|---|")
    for name, (walls, cpus) in results.items():
        print(f"| {name} | {statistics.mean(walls):.3f} / {statistics.median(walls):.3f} "
              f"| {statistics.mean(cpus):.3f} |")


if __name__ == "__main__":
    main()
