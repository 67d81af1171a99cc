#!/usr/bin/env python3
"""An unrelated write's latency, quietly and during a flood of wrong-password logins.

    python bench/write_stall.py [--workers 2] [--flood 40] [--writes 200]

Starts ``stepup serve`` on a fresh SQLite data directory, creates an app API key and one
of its users, then times ``PATCH /api/v1/users/{id}`` (the key's check and rate counter,
an UPDATE and an audit row: a short write transaction), one call after another:

- quietly, ``--writes`` times;
- again while ``--flood`` clients each send wrong-password logins for made-up e-mail
  addresses back to back (anonymous guessing: an argon2 check apiece).

Prints p50/p99 of both and the logins answered per second during the flood. The
throttles are raised for the run so that every login reaches the password check (one
made-up address per login, and a per-network cap above what the flood sends).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from loads import free_port, wait_ready

PY = sys.executable
STEPUP = [PY, "-m", "stepup.cli"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def time_writes(client: httpx.AsyncClient, user_id: str, key: str, n: int
                      ) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        r = await client.patch(f"/api/v1/users/{user_id}", json={
            "language": "ru" if i % 2 else "en"}, headers={"Authorization": f"Bearer {key}"})
        out.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"PATCH answered {r.status_code}: {r.text}")
    return out


async def flood(client: httpx.AsyncClient, stop: asyncio.Event, counts: dict[str, int]
                ) -> None:
    while not stop.is_set():
        try:
            r = await client.post("/api/v1/login", json={
                "email": f"nobody-{secrets.token_hex(6)}@example.com",
                "password": "wrong-password-123"})
            status = str(r.status_code)
        except httpx.TransportError as exc:
            status = type(exc).__name__
        counts[status] = counts.get(status, 0) + 1


async def measure(base: str, key: str, args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.flood + 8)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        r = await client.post("/api/v1/users", json={"email": "bench@example.com"},
                              headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()
        user_id = r.json()["id"]
        await time_writes(client, user_id, key, 20)  # warm up
        quiet = await time_writes(client, user_id, key, args.writes)

        stop, counts = asyncio.Event(), dict[str, int]()
        flooders = [asyncio.create_task(flood(client, stop, counts))
                    for _ in range(args.flood)]
        await asyncio.sleep(1.0)  # let the flood build up
        started = time.perf_counter()
        busy = await time_writes(client, user_id, key, args.writes)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*flooders)

    print("| phase | writes | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for name, values in (("quiet", quiet), (f"{args.flood} wrong-password logins", busy)):
        print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | "
              f"{pct(values, 0.99):.1f} | {max(values):.1f} |")
    answered = sum(counts.values())
    print(f"\nlogins answered during the flood: {answered} ({answered / elapsed:.0f}/s), "
          f"by status: {dict(sorted(counts.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flood", type=int, default=40)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepup-stall-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
        env["STEPUP_DATA_DIR"] = str(work / "data")
        env["STEPUP_PASSWORD_FAILURES_PER_IP"] = str(10**8)  # every login is hashed
        subprocess.run([*STEPUP, "migrate"], env=env, capture_output=True, check=True)
        out = subprocess.run([*STEPUP, "apikey", "create", "--role", "app"], env=env,
                             capture_output=True, text=True, check=True).stdout
        found = re.search(r"^key:\s+(\S+)", out, re.M)
        if found is None:
            raise RuntimeError(f"no key in: {out}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*STEPUP, "serve", "--port", str(port), "--workers",
                                   str(args.workers)], env=env,
                                  stdout=(work / "serve.log").open("w"),
                                  stderr=subprocess.STDOUT)
        try:
            wait_ready(f"{base}/healthz")
            print(f"stepup serve on SQLite, {args.workers} worker(s); "
                  f"{args.writes} PATCH /api/v1/users/{{id}} one after another\n")
            asyncio.run(measure(base, found.group(1), args))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
