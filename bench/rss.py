#!/usr/bin/env python3
"""Worker RSS at start-up and after a short load, on SQLite and PostgreSQL.

    python bench/rss.py [--db sqlite postgres] [--users 2000] [--calls verify login]
                        [--concurrency 8] [--duration 5] [--sqlite-workers 1]
                        [--pg-workers 2]

The set-up of ``compare.py`` (``stepup bench seed``, ``stepup serve --no-access-log``, an
app key, ``../shared/bench/totp_load.py`` with wrk): the serving processes' RSS (VmRSS
from /proc, MB) once ``/readyz`` answers, then after each call has been driven at each
concurrency. With several workers the first figure is the supervising parent's. Growth
between the two is what the load left behind (caches, allocator arenas); the start-up
figure is mostly code and data imported. One run takes about a minute per database.
"""

from __future__ import annotations

import argparse

import compare
import loads


def main() -> None:
    loads.ensure_wrk()
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], nargs="+",
                    default=["sqlite", "postgres"])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--calls", choices=["verify", "login"], nargs="+",
                    default=["verify", "login"])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8])
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--sqlite-workers", type=int, default=1)
    ap.add_argument("--pg-workers", type=int, default=2)
    compare.add_serving_arguments(ap, pg_pool=10)
    args = ap.parse_args()
    if args.duration > 29:
        ap.error("--duration must stay inside one 30-s time step (at most 29)")
    rows = []
    for db in args.db:
        workers = args.sqlite_workers if db == "sqlite" else args.pg_workers
        run = compare.run_stepup(db, args.users, workers, args)
        served = sum(s["requests"] for by_c in run["calls"].values() for s in by_c.values())
        rows.append((db, workers, run["rss_mb_start"], run["rss_mb"], served))
    print("\n| database | workers | RSS at start-up (MB) | RSS after the load (MB) | requests |")
    print("|---|---|---|---|---|")
    for db, workers, start, after, served in rows:
        print(f"| {db} | {workers} | {start} | {after} | {served:,} |")


if __name__ == "__main__":
    main()
