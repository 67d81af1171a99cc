#!/usr/bin/env python3
"""One run, one machine, one load generator: StepUp's TOTP verification against
privacyIDEA 3.14's /validate/check.

    python bench/compare.py [--db sqlite postgres] [--users 10000 1000000]
                            [--calls verify login] [--duration 20]
                            [--concurrency 1 8 32] [--repeat 1] [--skip-peer]
                            [--skip-ceiling] [--write-stall]
                            [--side-by-side off|also|only]

For each database and user count: ``stepup bench seed`` users, ``stepup serve``
(``--sqlite-workers`` or ``--pg-workers``, two by default; ``--no-access-log`` unless
``--access-log``), an app API key, then each call at each concurrency:

- ``verify``: ``POST /api/v1/users/{id}/verify``, the like-for-like call to the peer's
  ``/validate/check`` (an API key, a user id, a code);
- ``login``: ``POST /api/v1/login/verify``, the hosted login's second step, on login
  flows opened by ``stepup bench login-flows`` (as passed passwords would) just before:
  a returning user's login, from the address the account was made on (``stepup bench
  seed --signed-up-from``, 127.0.0.1 by default).

Then the peer, once, installed and started by ``../shared/bench/setup_privacyidea.sh``
(its own venv, made from the ``python3`` beside the interpreter that serves StepUp, so
both run on the same build; SQLite; gunicorn with 2 workers). Everything is driven by
``../shared/bench/totp_load.py``; each load runs inside one 30-s time step (the
user counts of a database served side by side, their loads in turn: ``run_stepups``),
so every token has a fresh step (a verify load, which also sends the previous step's
codes, waits for a step whose previous one no earlier load used). Prints a Markdown
table with the ratio to the peer at the same concurrency, StepUp's CPU milliseconds per
request (its processes' CPU time over the requests served, from /proc) and its worker
RSS; the JSON goes to bench/results/. ``--repeat N``: every row (the peer's too) driven
N times, the median load kept (``median_load``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import side_by_side
from loads import (
    PY,
    ROOT,
    SHARED,
    cached_mb,
    current_step,
    describe,
    ensure_wrk,
    free_port,
    held_mb,
    interpreter,
    load,
    measured_load,
    next_step,
    rss_mb,
    serving_pids,
    spread,
    turn_figures,
    wait_ready,
    write_turn,
)

STEPUP = [PY, "-m", "stepup.cli"]
LOGIN_BODY = '{"login_token": "{id}", "method": "totp", "code": "{code}"}'
# The users a verify load's codes are for, at most: 40,000 codes a step, three times
# the most any 10-s load has sent (~12,300).
VERIFY_USERS = 20_000


def pg_pool_for(workers: int) -> int:
    """docs/deployment.md's pool size for PostgreSQL: about two connections per core
    in all (the database runs on this host too), at least two a worker."""
    return max(2, 2 * (os.cpu_count() or 1) // workers)


class Served:
    """One database at one user count: seeded (``stepup bench seed``), given an app key
    and served (``stepup serve``) until ``stop``."""

    def __init__(self, db: str, users: int, workers: int, args: argparse.Namespace) -> None:
        self.db, self.users, self.workers = db, users, workers
        self.work = Path(tempfile.mkdtemp(prefix="stepup-bench-"))
        self.pg: Any = None
        self.server: subprocess.Popen[bytes] | None = None
        self.last_step: int | None = None  # the step the last load on these users ran in
        # Seconds a load of these users took beyond --duration, the most seen (the
        # generator writes every request ahead: ~6 s for a million users); None until
        # one ran.
        self.overhead: float | None = None
        self.loads = 0
        self.result: dict[str, Any] = {"db": db, "users": users, "workers": workers,
                                       "calls": {}}
        try:
            self._start(args)
        except BaseException:
            self.stop(keep=True)  # the cluster and server it started, its directory kept
            raise

    def _start(self, args: argparse.Namespace) -> None:
        db, users, workers = self.db, self.users, self.workers
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
        env["STEPUP_DATA_DIR"] = str(self.work / "data")
        if args.sqlite_resident_mb is not None:
            env["STEPUP_SQLITE_RESIDENT_MB"] = str(args.sqlite_resident_mb)
        if db == "postgres":
            sys.path.insert(0, str(ROOT))
            from tests.support.pg import ThrowawayPostgres

            self.pg = ThrowawayPostgres()
            self.pg.start()
            env["STEPUP_DATABASE_URL"] = self.pg.dsn_async
            env["STEPUP_DB_POOL_SIZE"] = str(args.pg_pool or pg_pool_for(workers))
            env["STEPUP_DB_MAX_OVERFLOW"] = "0"
        self.opts: Any = {"env": env, "cwd": self.work, "check": True,
                          "capture_output": True, "text": True}
        subprocess.run([*STEPUP, "migrate"], **self.opts)
        self.tokens = self.work / "tokens.csv"
        t0 = time.monotonic()
        subprocess.run([*STEPUP, "bench", "seed", "--users", str(users), "--tokens",
                        str(self.tokens)], **self.opts)
        self.result["seed_seconds"] = round(time.monotonic() - t0, 1)
        key_out = subprocess.run([*STEPUP, "apikey", "create", "--role", "app", "--name",
                                  "bench", "--rate", "100000000"], **self.opts).stdout
        self.key = re.search(r"key:\s+(\S+)", key_out).group(1)  # type: ignore[union-attr]
        port = free_port()
        quiet = [] if args.access_log else ["--no-access-log"]
        self.server = subprocess.Popen([*STEPUP, "serve", "--port", str(port), "--workers",
                                        str(workers), *quiet], env=env, cwd=self.work,
                                       stdout=(self.work / "serve.log").open("w"),
                                       stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        wait_ready(self.base + "/readyz")
        # before any load: imports and start-up
        self.database = self.work / "data" / "stepup.db"  # SQLite's (STEPUP_DATA_DIR)
        self.result["rss_mb_start"] = rss_mb(self.server.pid, self.database)

    def load_args(self, call: str, c: int) -> tuple[Path, list[str]]:
        """The tokens or login flows of a load of ``call`` at ``c``, and the generator's
        arguments for it."""
        if call == "verify":
            # Each token twice a step (the previous step's code, then the current's; the
            # window takes both): 10k users feed 2,000 verifies a second over a 10-s
            # load, where one code each capped it at 1,000. More users than VERIFY_USERS
            # are cut to that many, spread over the file (loads.spread): a load
            # sends a few thousand requests, and the generator, which writes every
            # request before it starts, took ~8 s to do so for a million users.
            return spread(self.tokens, VERIFY_USERS), [
                "--accept-field", "valid", "--steps-back", "1",
                "--header", f"Authorization: Bearer {self.key}"]
        self.loads += 1
        file = self.work / f"flows-{c}-{self.loads}.csv"
        subprocess.run([*STEPUP, "bench", "login-flows", "--tokens", str(self.tokens),
                        "--out", str(file), "--count", str(min(self.users, 20_000))],
                       **self.opts)
        # A 200 is an authenticated login (a session token in the body). A flow is used
        # once, and a user's code once a step: the users cap the login rows (10k users:
        # 1,000 a second over 10 s).
        return file, ["--path", "/api/v1/login/verify", "--body", LOGIN_BODY]

    def drive(self, call: str, c: int, file: Path, extra: list[str], duration: float,
              around_load: Callable[[list[int], str, int], AbstractContextManager[Any]]
              | None) -> dict[str, Any]:
        """One load, started now (the caller chose the step)."""
        assert self.server is not None
        sqlite = self.db == "sqlite"
        cached = cached_mb(self.database) if sqlite else None
        turn = write_turn(self.base) if sqlite else None
        began = time.monotonic()
        with around_load(serving_pids(self.server.pid), call, c) if around_load \
                else nullcontext():
            res = measured_load(self.server.pid, "json", self.base, file, c, duration,
                                extra)
        beyond = time.monotonic() - began - duration
        self.overhead = beyond if self.overhead is None else max(self.overhead, beyond)
        self.last_step = current_step()
        if cached is not None:
            res["db_cached_mb"] = cached  # as the load began
        if turn is not None:
            res.update(turn_figures(turn, write_turn(self.base)))
        print(f"stepup {self.db} {self.users} {call} c={c}: {res}", flush=True)
        return res

    def finish(self) -> None:
        assert self.server is not None
        self.result["rss_mb"] = rss_mb(self.server.pid, self.database)
        if self.db == "sqlite":
            self.result["db_mb"] = round(self.database.stat().st_size / 1e6, 1)
            self.result["db_held_mb"] = held_mb(self.server.pid, self.database)

    def stop(self, keep: bool) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=30)
        if self.pg is not None:
            self.pg.stop()
        if keep:
            print(f"the run failed: its work directory (serve.log, the database) is kept in "
                  f"{self.work}", file=sys.stderr, flush=True)
        else:  # a seeded million users is ~1 GB: not left behind
            shutil.rmtree(self.work, ignore_errors=True)


def median_load(loads: list[dict[str, Any]]) -> dict[str, Any]:
    """The load whose requests/s is the median of ``loads`` (the lower of the middle two
    for an even count), whole, with every load's requests/s beside it."""
    chosen = dict(sorted(loads, key=lambda r: r.get("rps") or 0)[(len(loads) - 1) // 2])
    if len(loads) > 1:
        chosen["loads_rps"] = [r.get("rps") for r in loads]
    return chosen


# A load's time beyond --duration, taken for users none of whose loads ran yet: more
# than any seen.
UNMEASURED = 15.0


def _fits(started: int, back: int, served: Served, duration: float) -> bool:
    """Whether ``served`` can be driven now, in the step the pair's first load began
    (``started``): the step is the same, its codes (and, for a verify, the step
    before's) unused by its last load, and a whole load, with the time its generator
    takes to write its requests first, still ends 2 s before the step does. A verify
    load sends the previous step's codes first: those in flight as the step ends reach
    the server two steps old, and are refused, rightly (round 20's ‡ rows, 1M users
    second in a pair, about one refusal per connection)."""
    now = time.time()
    return (current_step() == started
            and (served.last_step is None or started - back > served.last_step)
            and 30 - now % 30 >= duration + (
                UNMEASURED if served.overhead is None else served.overhead) + 2)


def run_stepups(db: str, counts: list[int], workers: int, args: argparse.Namespace,
                around_load: Callable[[list[int], str, int], AbstractContextManager[Any]]
                | None = None) -> list[dict[str, Any]]:
    """Seed and serve ``db`` at every user count in ``counts`` at once, and drive each
    call at each concurrency on them in turn: the loads of the user counts follow each
    other in one time step where they fit (two 10-s loads do), the first of the pair
    alternating, so the host's drift over the run falls on both alike. ``--repeat N``
    drives each row N times and keeps the median load (``median_load``).
    ``--side-by-side also`` (or ``only``, without the loads in turn) then drives the
    user counts at once, N times a row (bench/side_by_side.py).
    ``around_load(pids, call, c)``: entered around each load (bench/cpu.py profiles the
    workers there)."""
    repeat = getattr(args, "repeat", 1)
    mode = getattr(args, "side_by_side", "off")
    alone, together = mode != "only", mode != "off" and len(counts) > 1
    servers: list[Served] = []
    keep = False
    try:
        for users in counts:
            servers.append(Served(db, users, workers, args))
        for call in args.calls:
            back = 1 if call == "verify" else 0
            for c in args.concurrency:
                loads: dict[int, list[dict[str, Any]]] = {id(s): [] for s in servers}
                for turn in range(repeat if alone else 0):
                    order = servers if turn % 2 == 0 else servers[::-1]
                    prepared = {id(s): s.load_args(call, c) for s in order}
                    started: int | None = None
                    for served in order:
                        if started is None or not _fits(started, back, served,
                                                         args.duration):
                            next_step(served.last_step, back)
                            started = current_step()
                        file, extra = prepared[id(served)]
                        loads[id(served)].append(served.drive(
                            call, c, file, extra, args.duration, around_load))
                for served in servers if alone else []:
                    served.result["calls"].setdefault(call, {})[c] = median_load(
                        loads[id(served)])
                if together:  # bench/side_by_side.py: the user counts loaded at once
                    servers[-1].result.setdefault("together", {}).setdefault(call, {})[c] = [
                        side_by_side.drive_together(servers, call, c, args.duration,
                                                    next_step, turn)
                        for turn in range(repeat)]
        for served in servers:
            served.finish()
    except BaseException:
        keep = True
        raise
    finally:
        for served in servers:
            served.stop(keep)
    return [s.result for s in servers]


def run_stepup(db: str, users: int, workers: int, args: argparse.Namespace,
               around_load: Callable[[list[int], str, int], AbstractContextManager[Any]]
               | None = None) -> dict[str, Any]:
    """``run_stepups`` at one user count."""
    return run_stepups(db, [users], workers, args, around_load)[0]


def run_ceiling(args: argparse.Namespace) -> dict[str, dict[int, dict[str, Any]]]:
    """The ceilings of this run: ``null_server.py`` (no work at all: the generator and
    the machine) and ``bare_server.py`` (a FastAPI route with a pydantic body and
    nothing else: the framework), each driven like StepUp's verify."""
    work = Path(tempfile.mkdtemp(prefix="stepup-ceiling-"))
    tokens = work / "tokens.csv"
    tokens.write_text("".join(f"u{i},{base64.b32encode(os.urandom(20)).decode()}\n"
                              for i in range(150_000)))
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for name, script in (("null server (1w)", "null_server.py"),
                         ("bare FastAPI (1w)", "bare_server.py")):
        port = free_port()
        server = subprocess.Popen([PY, str(ROOT / "bench" / script), str(port)])
        results[name] = {}
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            for c in args.concurrency:
                res = measured_load(server.pid, "json", base, tokens, c, args.duration,
                                    ["--accept-field", "valid"])
                results[name][c] = res
                print(f"{name} c={c}: {res}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    return results


def _peer_dir() -> Path:
    return Path(os.environ.get("PEER_DIR", Path.home() / "stepup-peer"))


def _interpreters(found: dict[str, dict[str, Any]]) -> str:
    """The caption that says which CPython served each side, and whether it was the
    same build (the shared script makes the peer's venv from ``python3`` on PATH)."""
    lines = [f"StepUp (and the ceilings) ran on {describe(found['stepup'])}."]
    peer = found.get("peer")
    if peer is not None:
        same = peer == found["stepup"]
        lines.append(f"privacyIDEA ran on {describe(peer)}"
                     + (": the same interpreter." if same else
                        ": **not the same interpreter as StepUp's: the ratios compare "
                        "the builds too.**"))
    return " ".join(lines)


def run_peer(args: argparse.Namespace, ours: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """``ours``: ``interpreter()``, the CPython that serves StepUp. The shared script makes
    the peer's venv from ``python3`` on PATH: the one beside it, so that both sides run on
    the same build."""
    peer_dir = _peer_dir()
    env = {**os.environ, "PEER_DIR": str(peer_dir),
           "PATH": f"{Path(ours['executable']).parent}{os.pathsep}"
                   f"{os.environ.get('PATH', '')}"}
    subprocess.run(["bash", str(SHARED / "setup_privacyidea.sh")], check=True, env=env)
    results: dict[int, dict[str, Any]] = {}
    try:
        wait_ready("http://127.0.0.1:5001/")
        for c in args.concurrency:
            loads = []
            for _ in range(getattr(args, "repeat", 1)):
                next_step()
                loads.append(load("privacyidea", "http://127.0.0.1:5001",
                                  peer_dir / "pi" / "tokens.csv", c, args.duration, []))
                print(f"peer c={c}: {loads[-1]}", flush=True)
            results[c] = median_load(loads)
    finally:
        subprocess.run(["bash", str(SHARED / "setup_privacyidea.sh"), "stop"], env=env)
    return results


def _each_load(row: dict[str, Any]) -> str:
    """The table's last cell: every load's requests/s, in the order they ran."""
    return f" {' / '.join(map(str, row.get('loads_rps', [])))} |"


def table(runs: list[dict[str, Any]], peer: dict[int, dict[str, Any]],
          ceiling: dict[str, dict[int, dict[str, Any]]] | None = None) -> str:
    several = any("loads_rps" in s for r in runs for by_c in r["calls"].values()
                  for s in by_c.values())
    lines = ["| database | users | call | c | req/s | p50 ms | p95 ms | p99 ms | CPU ms/req "
             "| × peer |" + (" each load's req/s |" if several else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if several else "")]
    capped = refused = False
    for r in runs:
        for call, by_c in r["calls"].items():
            for c, s in by_c.items():
                p = peer.get(c)
                ratio = f"{s['rps'] / p['rps']:.1f}" if p and p.get("rps") else "–"
                # † the load ran out of unused codes: the users capped it, not the server
                ran_out = bool(s.get("tokens_exhausted_waits"))
                # ‡ some codes sent were refused (replays of an earlier load's codes)
                replays = bool(s.get("refused_valid"))
                rps = f"{s['rps']}{'†' if ran_out else ''}{'‡' if replays else ''}"
                capped, refused = capped or ran_out, refused or replays
                lines.append(f"| {r['db']} ({r['workers']}w) | {r['users']:,} | {call} | {c} "
                             f"| {rps} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} "
                             f"| {s.get('cpu_ms', '–')} | {ratio} |"
                             + (_each_load(s) if several else ""))
    for c, p in peer.items():
        lines.append(f"| privacyIDEA 3.14 (2w) | – | /validate/check | {c} | {p['rps']} "
                     f"| {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p.get('cpu_ms', '–')} "
                     f"| 1.0 |" + (_each_load(p) if several else ""))
    for name, by_c in (ceiling or {}).items():
        for c, s in by_c.items():
            lines.append(f"| ceiling: {name} | – | – | {c} | {s['rps']} | {s['p50_ms']} "
                         f"| {s['p95_ms']} | {s['p99_ms']} | {s.get('cpu_ms', '–')} | – |"
                         + (" – |" if several else ""))
    if several:
        lines.append("\nEach row of StepUp and of the peer is the median of its loads by "
                     "requests/s (all of that load's figures); the last column has every "
                     "load's requests/s, in the order they ran.")
    if capped:
        lines.append("\n† the load ran out of unused codes (`tokens_exhausted_waits` > 0): "
                     "the users seeded capped this row, not the server.")
    if refused:
        lines.append("\n‡ some codes the load sent were refused (`refused_valid` > 0): "
                     "counted in requests/s, though not verifications.")
    return "\n".join(lines)


def add_serving_arguments(ap: argparse.ArgumentParser, *, pg_pool: int | None = None
                          ) -> None:
    """The options of how ``Served`` starts ``stepup serve``, for every script that
    serves through it (compare.py, cpu.py, rss.py): ``Served`` reads them all."""
    ap.add_argument("--sqlite-resident-mb", type=int, default=None,
                    help="how much of the SQLite database the server keeps mapped in "
                         "memory (STEPUP_SQLITE_RESIDENT_MB; 0: none; by default the "
                         "server's own default: store/sqlite_resident.py)")
    ap.add_argument("--access-log", action="store_true",
                    help="keep uvicorn's access log (off by default, as the peer's gunicorn "
                         "keeps none)")
    ap.add_argument("--pg-pool", type=int, default=pg_pool,
                    help="connections per PostgreSQL worker (no overflow); by default "
                         + (str(pg_pool) if pg_pool else
                            "docs/deployment.md's rule, pg_pool_for(workers)"))


def main() -> None:
    ensure_wrk()
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], nargs="+", default=["sqlite"])
    ap.add_argument("--users", type=int, nargs="+", default=[10_000])
    ap.add_argument("--calls", choices=["verify", "login"], nargs="+",
                    default=["verify", "login"])
    ap.add_argument("--pg-workers", type=int, default=2,
                    help="workers on PostgreSQL")
    ap.add_argument("--sqlite-workers", type=int, default=2,
                    help="workers on SQLite (they take turns at the one writer: "
                         "store/sqlite_turn.py)")
    add_serving_arguments(ap)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--repeat", type=int, default=1,
                    help="loads per row; the table keeps the median one (by requests/s)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--side-by-side", choices=["off", "also", "only"], default="off",
                    help="also (or only) load a database's user counts at the same time, "
                         "--repeat times a row: what the larger count costs, with the "
                         "host's drift on both alike (bench/side_by_side.py)")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--write-stall", action="store_true",
                    help="end with bench/write_stall.py: an unrelated write, quietly and "
                         "during 40 concurrent wrong-password logins")
    ap.add_argument("--skip-ceiling", action="store_true",
                    help="leave out the null-server and bare-FastAPI rows, and the "
                         "PostgreSQL floor (bench/pg_floor.py)")
    args = ap.parse_args()
    if args.duration > 29:
        ap.error("--duration must stay inside one 30-s time step (at most 29)")

    runs = [run for db in args.db
            for run in run_stepups(db, args.users, args.sqlite_workers if db == "sqlite"
                                   else args.pg_workers, args)]
    interpreters = {"stepup": interpreter()}
    peer = {} if args.skip_peer else run_peer(args, interpreters["stepup"])
    if not args.skip_peer:
        interpreters["peer"] = interpreter(_peer_dir() / "pi-venv" / "bin" / "python")
    ceiling = {} if args.skip_ceiling else run_ceiling(args)
    if not args.skip_ceiling and "postgres" in args.db:
        # The database's own floor for the PostgreSQL rows: a verify's statements on raw
        # asyncpg (bench/pg_floor.py). Its CPU column is the PostgreSQL server's.
        import pg_floor

        try:
            ceiling["PostgreSQL floor, raw asyncpg (1 process)"] = pg_floor.run(
                args.concurrency, args.duration, min(args.users))
        except RuntimeError as exc:  # the verify's statements changed: say so, go on
            print(f"no PostgreSQL floor: {exc}", file=sys.stderr)
    together = {r["db"]: r["together"] for r in runs if "together" in r}
    report = table(runs, peer, ceiling) + "\n"
    if together:
        report += ("\nThe user counts of each database loaded at the same time "
                   "(bench/side_by_side.py):\n\n" + side_by_side.table(together) + "\n")
    report += "\n" + _interpreters(interpreters) + "\n"
    print("\n" + report)
    for r in runs:
        print(f"StepUp {r['db']} {r['users']:,} users: worker RSS (MB) {r['rss_mb']}, "
              f"seeded in {r['seed_seconds']} s")
        if "db_mb" in r:
            cached = [res.get("db_cached_mb") for calls in r["calls"].values()
                      for res in calls.values()]
            print(f"  its database ({r['db_mb']} MB) in the page cache as each load began "
                  f"(MB): {cached}; kept mapped by the server (not in the RSS above): "
                  f"{r.get('db_held_mb')} MB")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    everything = {"stepup": runs, "peer": peer, "ceiling": ceiling,
                  "interpreters": interpreters}
    (out / f"{stamp}.json").write_text(json.dumps(everything, indent=2, default=str))
    if args.write_stall:
        stall = subprocess.run([PY, str(ROOT / "bench" / "write_stall.py")], check=True,
                               capture_output=True, text=True).stdout
        print("\n" + stall)
        report += "\n" + stall
    (out / f"{stamp}.md").write_text(report)


if __name__ == "__main__":
    main()
