#!/usr/bin/env python3
"""The database's own floor for one verify on PostgreSQL: the statements a verify runs,
with nothing above the driver.

    python bench/pg_floor.py [--users 2000] [--concurrency 1 8] [--duration 10]
                             [--own-counters]

A throwaway cluster (as ``compare.py`` starts one), ``stepup migrate``, ``stepup bench
seed`` and an app key, as for StepUp's own rows. Then one real verify goes through the
app in this process with SQLAlchemy's statement events on, which records the SQL it sends
(so the floor follows the code: no statement is copied by hand), and those statements
are replayed with raw asyncpg: prepared once per connection, one connection per client,
as the verify sent them (in one transaction, BEGIN, the statements, COMMIT, if it began
one; since migration 0015 a verify is a read and one call, which begin none), each call on another
seeded user and a fresh time step, every client on the one key's counter row as
StepUp's load is. Prints requests/s, p50/p99 and the PostgreSQL server's CPU per call.
No Python above the driver could beat these figures: it is the ceiling of the
PostgreSQL rows of ``compare.py``, which adds it to them.

The key's last-use UPDATE (once a minute in StepUp) is left out of the replay.
``--own-counters`` gives each client a rate counter of its own, to show what the key's
one shared counter row costs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEPUP = [sys.executable, "-m", "stepup.cli"]


@dataclass
class Call:
    """What one verify's statements are about."""

    user_id: str
    method_id: str
    key_id: str
    key_hash: bytes
    step: int
    now: datetime
    prev_hash: str | None
    #: The account's chain head: the replayed compare-and-set of the head matches it.
    hash: str | None
    #: The rate counter the call counts on: the key's, as StepUp counts (``--own-counters``
    #: gives each client one of its own).
    counter: str = ""

    @property
    def window(self) -> datetime:
        return self.now.replace(second=0, microsecond=0)


def _values(c: Call) -> list[Any]:
    """The event's own columns (actor, event, ip, user agent, data, time)."""
    return [f"app:{c.key_id}", "code.verified", None, None,
            json.dumps({"method": "totp", "purpose": "login", "via_ip": "127.0.0.1"}), c.now]


def _count(c: Call) -> list[Any]:
    return [c.counter or f"apikey:{c.key_id}", c.window, 1]


# Each statement the verify sends, told by how it begins, and its parameters in order.
# A statement the verify sends that is not here stops the run: the floor must be
# updated along with the code.
PARAMS: dict[str, Callable[[Call], list[Any]]] = {
    # The key, its count so far and the check's read (user, method, guards) in one.
    "SELECT api_keys.": lambda c: [c.user_id, "apikey:", c.window, "totp", "account",
                                   "method:totp", c.key_hash],
    "UPDATE methods SET last_step": lambda c: [c.step, c.now, c.method_id],
    "WITH advanced AS (UPDATE users SET audit_head": lambda c: [
        c.hash, c.user_id, c.prev_hash, *_values(c)],
    "INSERT INTO rate_counters": _count,
    # The step spent, the event added and the key counted by one call (migration 0015).
    "SELECT stepup_spend_and_record(": lambda c: [
        c.method_id, c.step, c.now, c.user_id, "account", "method:totp", c.prev_hash,
        c.hash, *_values(c), *_count(c)[:2], 100_000_000],
}
LEFT_OUT = ("UPDATE api_keys SET last_used_at",)


def _event_and_count(c: Call) -> list[Any]:
    """The event's statement that counts the key's call as well (``audit.record_last``):
    the counter's parameters come first in it."""
    return [*_count(c), *_values(c), c.prev_hash, c.hash, c.user_id]


def _builder(sql: str) -> Callable[[Call], list[Any]] | None:
    if sql.startswith("WITH advanced AS") and "INSERT INTO rate_counters" in sql:
        return _event_and_count
    return next((build for start, build in PARAMS.items() if sql.startswith(start)), None)


async def record_verify(data: Path, dsn: str, tokens: list[str], key: str
                        ) -> tuple[list[str], bool]:
    """The statements of one real verify, in order, as SQLAlchemy sent them, and whether
    they went in a transaction (a BEGIN sent)."""
    sys.path.insert(0, str(ROOT / "src"))
    import httpx
    import pyotp
    from sqlalchemy import event
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    from stepup.config import Settings
    from stepup.services.runtime import Runtime
    from stepup.web.app import create_app

    settings = Settings(data_dir=data, database_url=dsn)
    rt = Runtime.build(settings)
    app = create_app(settings, runtime=rt, migrate_on_start=False)
    sent: list[str] = []
    engine = rt.engine.sync_engine

    def on_statement(_c: Any, _cur: Any, sql: str, *_rest: Any) -> None:
        sent.append(" ".join(sql.split()))

    begin = AsyncAdapt_asyncpg_connection._start_transaction
    began: list[bool] = []

    async def counted(self: Any) -> None:
        began.append(True)
        await begin(self)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as client:

        async def verify(token: str) -> httpx.Response:
            user, seed = token.split(",")[:2]
            return await client.post(f"/api/v1/users/{user}/verify",
                                     json={"method": "totp", "code": pyotp.TOTP(seed).now()},
                                     headers={"Authorization": f"Bearer {key}"})

        # The key's first call records its use (once a minute: the ordinary path, in a
        # transaction); the load's calls, all but one a minute per key, do not. So
        # another user's verify goes first, unrecorded.
        warm = await verify(tokens[1])
        if warm.status_code != 200:
            raise RuntimeError(f"the first verify failed: {warm.status_code} {warm.text}")
        event.listen(engine, "before_cursor_execute", on_statement)
        AsyncAdapt_asyncpg_connection._start_transaction = counted  # type: ignore[method-assign]
        try:
            r = await verify(tokens[0])
        finally:
            AsyncAdapt_asyncpg_connection._start_transaction = begin  # type: ignore[method-assign]
            event.remove(engine, "before_cursor_execute", on_statement)
    await rt.engine.dispose()
    if r.status_code != 200:
        raise RuntimeError(f"the recorded verify failed: {r.status_code} {r.text}")
    return sent, bool(began)


async def one_client(conn: Any, prepared: list[tuple[Any, Callable[[Call], list[Any]]]],
                     calls: list[Call], deadline: float, latencies: list[float],
                     in_transaction: bool) -> None:
    """Verifies on ``conn`` until ``deadline``, each on the next of ``calls``' users."""
    i = 0
    while time.perf_counter() < deadline:
        call = calls[i % len(calls)]
        i += 1
        call.step += 1
        call.now = datetime.now(UTC)
        call.prev_hash = call.hash
        call.hash = hashlib.sha256(f"{call.prev_hash}{call.step}".encode()).hexdigest()
        started = time.perf_counter()
        if in_transaction:
            async with conn.transaction():
                for stmt, build in prepared:
                    await stmt.fetch(*build(call))
        else:
            for stmt, build in prepared:
                await stmt.fetch(*build(call))
        latencies.append(time.perf_counter() - started)


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_pids(data_dir: Path) -> list[int]:
    """The cluster's postmaster and its children (the backends among them)."""
    master = int((data_dir / "postmaster.pid").read_text().split()[0])
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [master, *map(int, out.split())]


def _percentile(sorted_values: list[float], q: float) -> float:
    return round(1000 * sorted_values[min(len(sorted_values) - 1,
                                          int(q * len(sorted_values)))], 2)


async def load(dsn: str, data_dir: Path, sqls: list[str], users: list[Call], c: int,
               duration: float, own_counters: bool = False, in_transaction: bool = True
               ) -> dict[str, Any]:
    """``c`` clients for ``duration`` seconds, each on its own connection and its own
    share of the users (``own_counters``: and its own rate counter)."""
    import asyncpg  # type: ignore[import-untyped]

    conns = [await asyncpg.connect(dsn) for _ in range(c)]
    for i, call in enumerate(users):
        call.counter = f"apikey:{call.key_id}:{i % c}" if own_counters else ""
    try:
        prepared = [[(await conn.prepare(sql), build) for sql in sqls
                     if (build := _builder(sql)) is not None] for conn in conns]
        latencies: list[float] = []
        # Measured with every connection open: a backend's CPU time leaves with it.
        pids = _server_pids(data_dir)
        before, mine = _cpu_seconds(pids), time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(one_client(conn, prep, users[i::c], start + duration,
                                          latencies, in_transaction)
                               for i, (conn, prep) in enumerate(zip(conns, prepared,
                                                                    strict=True))))
        elapsed = time.perf_counter() - start
        used, client = _cpu_seconds(pids) - before, time.process_time() - mine
    finally:
        for conn in conns:
            await conn.close()
    latencies.sort()
    n = len(latencies)
    return {"concurrency": c, "requests": n, "rps": round(n / elapsed, 1),
            "p50_ms": _percentile(latencies, 0.50), "p95_ms": _percentile(latencies, 0.95),
            "p99_ms": _percentile(latencies, 0.99),
            "cpu_ms": round(1000 * used / n, 3) if n else None,
            "client_cpu_ms": round(1000 * client / n, 3) if n else None}


def run(concurrency: list[int], duration: float, users: int = 2000, *,
        own_counters: bool = False) -> dict[int, dict[str, Any]]:
    """Start a cluster, seed it, record a verify's statements, replay them at each
    concurrency; the results by concurrency (``cpu_ms``: PostgreSQL's CPU per call)."""
    sys.path.insert(0, str(ROOT))
    from tests.support.pg import ThrowawayPostgres

    work = Path(tempfile.mkdtemp(prefix="stepup-pgfloor-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
    env["STEPUP_DATA_DIR"] = str(work / "data")
    pg = ThrowawayPostgres()
    pg.start()
    try:
        env["STEPUP_DATABASE_URL"] = pg.dsn_async
        opts: Any = {"env": env, "cwd": work, "check": True, "capture_output": True,
                     "text": True}
        subprocess.run([*STEPUP, "migrate"], **opts)
        tokens = work / "tokens.csv"
        subprocess.run([*STEPUP, "bench", "seed", "--users", str(users), "--tokens",
                        str(tokens)], **opts)
        out = subprocess.run([*STEPUP, "apikey", "create", "--role", "app", "--name",
                              "floor", "--rate", "100000000"], **opts).stdout
        key = re.search(r"key:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
        lines = tokens.read_text().splitlines()
        sent, in_transaction = asyncio.run(record_verify(work / "data", pg.dsn_async,
                                                         lines, key))
        unknown = [s for s in sent if _builder(s) is None and not s.startswith(LEFT_OUT)]
        if unknown:
            raise RuntimeError("the verify sends statements bench/pg_floor.py does not "
                               "know; add them to PARAMS:\n" + "\n".join(unknown))
        sqls = [s for s in sent if _builder(s) is not None]
        how = "in one transaction" if in_transaction else "outside any transaction"
        print(f"replaying, {how}:\n" + "\n".join(f"  {s[:110]}" for s in sqls), flush=True)
        results = asyncio.run(_replay(pg, sqls, lines, concurrency, duration,
                                      own_counters, in_transaction))
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)  # the seeded data and its key file
    return results


async def _replay(pg: Any, sqls: list[str], tokens: list[str], concurrency: list[int],
                  duration: float, own_counters: bool, in_transaction: bool
                  ) -> dict[int, dict[str, Any]]:
    import asyncpg

    dsn = pg.dsn_sync_libpq
    conn = await asyncpg.connect(dsn)
    try:
        key = await conn.fetchrow("SELECT id, key_hash FROM api_keys WHERE name = 'floor'")
        ids = [line.split(",")[0] for line in tokens]
        rows = await conn.fetch("SELECT users.id, methods.id AS method_id, users.audit_head "
                                "FROM users JOIN methods ON methods.user_id = users.id "
                                "AND methods.type = 'totp' WHERE users.id = ANY($1)", ids)
    finally:
        await conn.close()
    base = 10**12  # above any real time step: every replayed step is a fresh one
    users = [Call(r["id"], r["method_id"], key["id"], key["key_hash"], base,
                  datetime.now(UTC), None, r["audit_head"]) for r in rows]
    results: dict[int, dict[str, Any]] = {}
    for c in concurrency:
        results[c] = await load(dsn, pg.data_dir, sqls, users, c, duration, own_counters,
                                in_transaction)
        print(f"pg floor c={c}: {results[c]}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--own-counters", action="store_true",
                    help="each client counts on a rate counter of its own, not the key's "
                         "one: what the shared counter row costs")
    args = ap.parse_args()
    results = run(args.concurrency, args.duration, args.users,
                  own_counters=args.own_counters)
    print("\n| c | req/s | p50 ms | p95 ms | p99 ms | PostgreSQL CPU ms/call |")
    print("|---|---|---|---|---|---|")
    for c, s in results.items():
        print(f"| {c} | {s['rps']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} "
              f"| {s['cpu_ms']} |")


if __name__ == "__main__":
    main()
