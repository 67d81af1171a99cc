#!/usr/bin/env python3
"""CPU milliseconds per request, worker RSS and, optionally, where the CPU goes.

    python bench/cpu.py [--db sqlite] [--users 20000] [--calls verify login]
                        [--concurrency 1 8] [--duration 15] [--workers 1]
                        [--access-log] [--profile DIR | --threads]

The same set-up as ``compare.py`` (``stepup bench seed``, ``stepup serve``, an app key,
``../shared/bench/totp_load.py``), without the peer and with short loads: the figure to
watch is ``CPU ms/req``, the serving processes' CPU time (user + system, from
/proc/PID/stat) over the requests answered. Unlike requests/s it hardly moves when
something else runs on the machine, so it can compare code before and after a change.

``--profile DIR``: py-spy samples every worker during each load (``py-spy record --pid``,
which needs ptrace: root, or ``kernel.yama.ptrace_scope=0``), writes the collapsed stacks
per worker and load to DIR (speedscope.app and flamegraph.pl read them as they are) and
prints where the samples fell: by package (the frame that was running) and by the
innermost StepUp function. SQLAlchemy runs statements in greenlets, whose stacks py-spy
shows apart from the request's, so the package figures are the ones to trust. Profiling
costs the workers a little CPU: take the CPU figures from a run without it.

On SQLite the table also has the write turn's figures for each load, read from the
workers' ``/metrics`` before and after it (``stepup_sqlite_write_turn_*``): the mean
time a write transaction held the turn and waited for it, and the share that waited
over 0.1 ms. Two workers write at most 1 / (time held) transactions a second.

``--threads``: each worker's CPU during each load split by thread (``/proc/PID/task``):
its event loop's, and each other thread's (SQLite's checkpoints, the write turn's
helper, hashing). The data directory is made under ``$TMPDIR``, so ``TMPDIR=/dev/shm``
runs a load with the database on tmpfs, to tell time spent waiting for the disk from
CPU (bench/README.md, round 15).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import compare
import loads

# Frames are told apart by the file they run in: the first of these found in its path.
PACKAGES = ("stepup", "sqlalchemy", "aiosqlite", "sqlite3", "asyncpg", "fastapi",
            "starlette", "pydantic", "uvicorn", "httptools", "uvloop", "anyio",
            "cryptography", "pyotp", "prometheus_client", "asyncio", "json", "logging")


def _path(frame: str) -> str:
    """The file of a py-spy frame, ``function (package/module.py:line)``."""
    return frame.rsplit(" (", 1)[-1].rstrip(")").rsplit(":", 1)[0]


def _package(frame: str) -> str:
    path = _path(frame)
    top = path.split("/", 1)[0].removesuffix(".py")
    if top in PACKAGES:
        return top
    return "native / other" if path.endswith((".so", ">")) and "<frozen" not in path \
        else "stdlib (other)"


def breakdown(raw: list[Path], top: int = 14) -> str:
    """Where the samples of py-spy's raw (collapsed-stack) files fell."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    total = 0
    for file in raw:
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [f for f in stack.split(";") if " (" in f]
            if not frames:
                continue
            total += n
            by_package[_package(frames[-1])] += n
            # The innermost StepUp frame: which of our functions the time is spent under.
            ours = next((f for f in reversed(frames) if _path(f).startswith("stepup/")), None)
            if ours is not None:
                name = ours.rsplit(" (", 1)[0]
                by_function[f"{_path(ours).removeprefix('stepup/')}:{name}"] += n
    if not total:
        return "no samples"
    lines = ["running in (innermost frame's package):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in by_package.most_common(top)]
    lines.append("under StepUp function (innermost StepUp frame):")
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in by_function.most_common(top)]
    return "\n".join(lines)


def profiler(out: Path, duration: float) -> Any:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    @contextmanager
    def around(pids: list[int], call: str, c: int) -> Iterator[None]:
        procs = []
        for pid in pids:
            procs.append(subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
                 "--rate", "200", "--duration", str(round(duration)),
                 "-o", str(out / f"{call}-c{c}-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            yield
        finally:
            for p in procs:
                p.wait(timeout=duration + 30)
            files = [out / f"{call}-c{c}-{pid}.txt" for pid in pids]
            found = [f for f in files if f.exists()]
            print(f"--- profile {call} c={c} ({', '.join(map(str, found))})")
            print(breakdown(found) if found else "py-spy wrote nothing (ptrace refused?)",
                  flush=True)

    return around


def _thread_ticks(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of ``pid``: (user, system) CPU time in clock ticks."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ticks[int(tid)] = loads.cpu_ticks(Path(f"/proc/{pid}/task/{tid}/stat"))
        except OSError:  # the thread ended
            continue
    return ticks


def thread_split() -> Any:
    """Where each worker's CPU went during a load, by thread: the event loop's (the
    process's main thread) and the others', in seconds of user and system time."""

    @contextmanager
    def around(pids: list[int], call: str, c: int) -> Iterator[None]:
        before = {pid: _thread_ticks(pid) for pid in pids}
        yield
        hz = loads.CLOCK_TICKS
        print(f"--- threads {call} c={c} (CPU seconds, user + system)")
        for pid in pids:
            spent = {tid: (u - before[pid].get(tid, (0, 0))[0],
                           s - before[pid].get(tid, (0, 0))[1])
                     for tid, (u, s) in _thread_ticks(pid).items()}
            loop = spent.pop(pid, (0, 0))
            others = sorted((v for v in spent.values() if sum(v)), key=sum, reverse=True)
            total = sum(loop) + sum(sum(v) for v in others)
            if not total:
                continue  # a process that served nothing in this load
            print(f"  pid {pid}: event loop {loop[0] / hz:.2f} + {loop[1] / hz:.2f} "
                  f"({100 * sum(loop) / total:.0f} %); other threads "
                  + (", ".join(f"{u / hz:.2f} + {s / hz:.2f}" for u, s in others) or "none"),
                  flush=True)

    return around


def main() -> None:
    loads.ensure_wrk()
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--calls", choices=["verify", "login"], nargs="+",
                    default=["verify", "login"])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--workers", type=int, default=1)
    compare.add_serving_arguments(ap)
    ap.add_argument("--profile", type=Path, default=None,
                    help="sample the workers with py-spy; profiles go to this directory")
    ap.add_argument("--threads", action="store_true",
                    help="print each worker's CPU by thread for each load")
    args = ap.parse_args()
    if args.duration > 29:
        ap.error("--duration must stay inside one 30-s time step (at most 29)")
    if args.threads and args.profile is not None:
        ap.error("--threads and --profile do not go together (py-spy's own CPU)")
    around = thread_split() if args.threads else None
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        around = profiler(args.profile, args.duration)
    run = compare.run_stepup(args.db, args.users, args.workers, args, around_load=around)
    turn = args.db == "sqlite"  # the write turn's figures (loads.turn_figures)
    print("\n| call | c | req/s | p50 ms | p99 ms | CPU ms/req | errors |"
          + (" turn held ms | turn wait ms | waited % |" if turn else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|---|" if turn else ""))
    for call, by_c in run["calls"].items():
        for c, s in by_c.items():
            bad = s["refused_valid"] + s["errors"]
            print(f"| {call} | {c} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} "
                  f"| {s['cpu_ms']} | {bad} |"
                  + (f" {s['turn_held_ms']} | {s['turn_wait_ms']} | {s['turn_waited_pct']} |"
                     if turn else ""))
    print(f"{args.db}, {args.workers} worker(s), {args.users:,} users; worker RSS (MB) "
          f"{run['rss_mb']}")
    out = loads.ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"cpu-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(run, indent=2, default=str))


if __name__ == "__main__":
    main()
