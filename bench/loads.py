"""One load and what it measures: the helpers that ``compare.py`` and the scripts built
on it (``cpu.py``, ``rss.py``) share.

A load is ``../shared/bench/totp_load.py`` run once (``load``), inside one 30-s TOTP
step (``next_step``), with the serving processes' CPU time over it
(``measured_load``), their RSS, how much of a SQLite file is in the page cache
(``cached_mb``) and SQLite's write turn as the workers' ``/metrics`` tell it
(``write_turn``). ``ensure_wrk`` installs the generator's engine where it is missing.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STEPUP_SHARED_BENCH", ROOT.parent / "shared" / "bench"))
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def next_step(after: int | None = None, back: int = 0) -> None:
    """Sleep until just after a 30-s TOTP step begins: a load of up to ~29 s then runs
    inside one step, with every token unused in it. ``after``: the last step an earlier
    load on the same users ran in; the step waited for is the first whose codes, and
    those of the ``back`` steps before it (``--steps-back``), that load cannot have used.
    Without it, a verify load taking the previous step's codes right after a load that
    ran in that step sent codes already used: answered, rightly, as replays."""
    while True:
        time.sleep(30 - time.time() % 30 + 0.3)
        if after is None or current_step() - back > after:
            return


def current_step() -> int:
    return int(time.time() // 30)


def load(target: str, url: str, tokens: Path, c: int, duration: float,
         extra: list[str]) -> dict[str, Any]:
    cmd = [PY, str(SHARED / "totp_load.py"), "--target", target, "--url", url, "--tokens",
           str(tokens), "-c", str(c), "-d", str(duration), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def serving_pids(parent: int) -> list[int]:
    """The serving processes: the parent (the worker itself when there is one) and its
    worker children (multiprocessing's spawned processes, not its resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    pids = [parent]
    for pid in map(int, out.split()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            pids.append(pid)
    return pids


def rss_mb(parent: int, leave_out: Path | None = None) -> list[float]:
    """RSS of the serving processes, in MB, without the pages of ``leave_out`` they map:
    the SQLite database the serving process keeps mapped (store/sqlite_resident.py) is
    page cache shared with every reader of the file, not memory of the process's own."""
    sizes = []
    for pid in serving_pids(parent):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            held = _mapped_kb(leave_out, pid) if leave_out is not None else 0
        except OSError:
            continue
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        if m:
            sizes.append(round((int(m.group(1)) - held) / 1024, 1))
    return sizes


def held_mb(parent: int, path: Path) -> float:
    """How much of ``path`` the serving processes keep mapped, in MB."""
    total = 0
    for pid in serving_pids(parent):
        try:
            total += _mapped_kb(path, pid)
        except OSError:
            continue
    return round(total / 1024, 1)


def _mapped_kb(path: Path, pid: int) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.smaps import mapped_kb

    return mapped_kb(path, pid)


def cached_mb(path: Path) -> float | None:
    """How much of a file is in the page cache, in MB (util-linux's ``fincore``); None
    where that cannot be told. Some hosts page out file cache left untouched for a while
    (bench/README.md: a DAMON reclaim scheme), so a seeded million users' database may be
    mostly on disk when a load begins."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES", str(path)],
                             capture_output=True, text=True, check=True).stdout
        return round(int(out.split()[0]) / 1e6, 1)
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


# The write turn's samples in the workers' /metrics (stepup_sqlite_write_turn_*), by
# what ``write_turn`` calls them; "quick": writes that waited at most 0.1 ms.
_TURN_SAMPLES = {("stepup_sqlite_write_turn_wait_seconds_count", None): "count",
                 ("stepup_sqlite_write_turn_wait_seconds_sum", None): "wait",
                 ("stepup_sqlite_write_turn_held_seconds_sum", None): "held",
                 ("stepup_sqlite_write_turn_wait_seconds_bucket", "0.0001"): "quick"}


def write_turn(base: str) -> dict[str, float]:
    """SQLite's write turn as the workers' ``/metrics`` tell it so far (summed over the
    workers): write transactions, the seconds they waited for the turn and held it, and
    how many waited at most 0.1 ms."""
    out = dict.fromkeys(_TURN_SAMPLES.values(), 0.0)
    text = httpx.get(base + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = _TURN_SAMPLES.get((s.name, s.labels.get("le")))
            if name is not None:
                out[name] = s.value
    return out


def turn_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """A load's write transactions: the mean time one held the turn and waited for it
    (ms), and the share that waited over 0.1 ms (%)."""
    d = {k: after[k] - before[k] for k in after}
    n = d["count"] or 1.0
    return {"turn_held_ms": round(1000 * d["held"] / n, 3),
            "turn_wait_ms": round(1000 * d["wait"] / n, 3),
            "turn_waited_pct": round(100 * (d["count"] - d["quick"]) / n, 1)}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(stat: Path) -> tuple[int, int]:
    """(user, system) CPU time of a process or thread, in clock ticks: fields 14 and 15
    of its ``stat`` file (/proc/PID/stat, /proc/PID/task/TID/stat). OSError if it is
    gone."""
    # The fields after the command name, which may hold spaces.
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu_seconds(parent: int) -> float:
    """CPU time (user + system) the serving processes have used so far."""
    total = 0
    for pid in serving_pids(parent):
        try:
            total += sum(cpu_ticks(Path(f"/proc/{pid}/stat")))
        except OSError:
            continue
    return total / CLOCK_TICKS


def measured_load(server: int, target: str, url: str, tokens: Path, c: int,
                  duration: float, extra: list[str]) -> dict[str, Any]:
    """``load`` with the server's CPU time over it: ``cpu_ms`` per request served (all of
    the server's processes, over every answer, accepted or not)."""
    before = cpu_seconds(server)
    res = load(target, url, tokens, c, duration, extra)
    used = cpu_seconds(server) - before
    res["cpu_s"] = round(used, 2)
    res["cpu_ms"] = round(1000 * used / res["requests"], 2) if res.get("requests") else None
    return res



def spread(file: Path, cap: int) -> Path:
    """A load's file of users or login flows, cut to ``cap`` lines: every n-th, as
    totp_load.py's ``--max-per-step`` takes them, so still spread over the whole
    database. The generator reads and decodes its whole file before it starts (~2 s
    for a million users), and writes every request ahead (~8 s): a load started that
    much later than its pair (side_by_side.py) had the host to itself at the end, and
    one that ran into its step's end sent codes gone stale (compare.VERIFY_USERS).
    Made once, beside the file; the file itself where it has no more lines."""
    cut = file.with_name(f"{file.stem}-spread-{cap}{file.suffix}")
    if cut.exists():
        return cut
    lines = file.read_text().splitlines()
    if len(lines) <= cap:
        return file
    stride = math.ceil(len(lines) / cap)
    cut.write_text("".join(line + "\n" for line in lines[::stride]))
    return cut


def ensure_wrk() -> None:
    """The load generator's default engine is Debian's wrk (the pure-Python engine
    measures itself above ~100 req/s): install it when it is missing."""
    if shutil.which("wrk"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wrk is missing: installing Debian's wrk", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True, env=env)
    if not shutil.which("wrk"):
        sys.exit("wrk: installed, but still not on PATH")


_ABOUT_INTERPRETER = """
import json, os, sys, sysconfig
maps = open("/proc/self/maps").read() if os.path.exists("/proc/self/maps") else ""
print(json.dumps({
    "version": sys.version.split()[0],
    "executable": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    "shared_libpython": "libpython" in maps,
    "configured": sysconfig.get_config_var("CONFIG_ARGS") or "",
}))
"""


def interpreter(python: str | Path = PY) -> dict[str, Any]:
    """Which CPython ``python`` is: its version, the interpreter behind the venv, whether
    it runs on a shared ``libpython`` and how it was configured. The build moves CPU a
    request by a fifth (bench/README.md, "After round 21: the interpreter"), so a run
    records the one that served StepUp and the one that served the peer."""
    out = subprocess.run([str(python), "-c", _ABOUT_INTERPRETER], capture_output=True,
                         text=True, check=True).stdout
    about: dict[str, Any] = json.loads(out)
    about["optimized"] = "--enable-optimizations" in about.pop("configured")
    return about


def describe(about: dict[str, Any]) -> str:
    """``interpreter``'s answer in a few words, for a table's caption."""
    build = ", ".join(filter(None, [
        "shared libpython" if about["shared_libpython"] else "libpython linked in",
        "--enable-optimizations" if about["optimized"] else ""]))
    return f"CPython {about['version']} ({about['executable']}; {build})"
