#!/usr/bin/env python3
"""One run, one machine, one load generator: StepUp's TOTP verification against
privacyIDEA 3.14's /validate/check.

    python bench/compare.py [--db sqlite|postgres] [--users 10000] [--workers 2]
                            [--duration 20] [--concurrency 1 8 32] [--skip-peer]

StepUp: ``stepup bench seed`` users, ``stepup serve --workers N``, an app API key, and
``POST /api/v1/users/{id}/verify`` (the like-for-like call). The peer: installed and
started by ``../shared/bench/setup_privacyidea.sh`` (its own venv, SQLite, gunicorn with
2 workers). Both are driven by ``../shared/bench/totp_load.py``. Prints a table, the
ratio per concurrency, and StepUp's worker RSS; results also go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

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


def load(target: str, url: str, tokens: Path, c: int, duration: float,
         headers: list[str]) -> dict[str, object]:
    cmd = [PY, str(SHARED / "totp_load.py"), "--target", target, "--url", url, "--tokens",
           str(tokens), "-c", str(c), "-d", str(duration)]
    if target == "json":
        cmd += ["--accept-field", "valid"]
    for h in headers:
        cmd += ["--header", h]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def rss_mb(parent: int) -> list[float]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    sizes = []
    for pid in [parent, *map(int, out.split())]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != parent and b"spawn_main" not in cmd:
            continue
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        if m:
            sizes.append(round(int(m.group(1)) / 1024, 1))
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stepup-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
    env["STEPUP_DATA_DIR"] = str(work / "data")
    pg = None
    if args.db == "postgres":
        sys.path.insert(0, str(ROOT))
        from tests.support.pg import ThrowawayPostgres

        pg = ThrowawayPostgres()
        pg.start()
        env["STEPUP_DATABASE_URL"] = pg.dsn_async
    stepup = [PY, "-m", "stepup.cli"]
    run = {"env": env, "cwd": work, "check": True, "capture_output": True, "text": True}
    subprocess.run([*stepup, "migrate"], **run)  # type: ignore[call-overload]
    tokens = work / "tokens.csv"
    t0 = time.monotonic()
    subprocess.run([*stepup, "bench", "seed", "--users", str(args.users), "--tokens",
                    str(tokens)], **run)  # type: ignore[call-overload]
    seeded = time.monotonic() - t0
    key_out = subprocess.run([*stepup, "apikey", "create", "--role", "app", "--name", "bench",
                              "--rate", "100000000"], **run).stdout  # type: ignore[call-overload]
    key = re.search(r"key:\s+(\S+)", key_out).group(1)  # type: ignore[union-attr]
    port = free_port()
    server = subprocess.Popen([*stepup, "serve", "--port", str(port), "--workers",
                               str(args.workers)], env=env, cwd=work,
                              stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT)
    results: dict[str, object] = {"db": args.db, "users": args.users, "workers": args.workers,
                                  "seed_seconds": round(seeded, 1), "stepup": {}, "peer": {}}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/readyz")
        for c in args.concurrency:
            time.sleep(31)  # a fresh time step: every token is usable once more
            results["stepup"][c] = load("json", base, tokens, c, args.duration,  # type: ignore[index]
                                        [f"Authorization: Bearer {key}"])
            print("stepup", c, results["stepup"][c], flush=True)  # type: ignore[index]
        results["stepup_rss_mb"] = rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if pg is not None:
            pg.stop()
    if not args.skip_peer:
        peer_dir = Path(os.environ.get("PEER_DIR", Path.home() / "stepup-peer"))
        subprocess.run(["bash", str(SHARED / "setup_privacyidea.sh")], check=True,
                       env={**os.environ, "PEER_DIR": str(peer_dir)})
        try:
            wait_ready("http://127.0.0.1:5001/")
            for c in args.concurrency:
                time.sleep(31)
                results["peer"][c] = load("privacyidea", "http://127.0.0.1:5001",  # type: ignore[index]
                                          peer_dir / "pi" / "tokens.csv", c, args.duration, [])
                print("peer", c, results["peer"][c], flush=True)  # type: ignore[index]
        finally:
            subprocess.run(["bash", str(SHARED / "setup_privacyidea.sh"), "stop"],
                           env={**os.environ, "PEER_DIR": str(peer_dir)})
    print(f"\nStepUp ({args.db}, {args.users} users, {args.workers} workers) vs privacyIDEA 3.14")
    print(f"{'c':>3} {'StepUp req/s':>13} {'p50':>7} {'p95':>7} {'p99':>7} "
          f"{'peer req/s':>11} {'ratio':>6}")
    for c in args.concurrency:
        s = results["stepup"][c]  # type: ignore[index]
        p = results["peer"].get(c, {}) if isinstance(results["peer"], dict) else {}
        ratio = (s["rps"] / p["rps"]) if p and p.get("rps") else float("nan")
        print(f"{c:>3} {s['rps']:>13} {s['p50_ms']:>7} {s['p95_ms']:>7} {s['p99_ms']:>7} "
              f"{p.get('rps', '-'):>11} {ratio:>6.1f}")
    print(f"StepUp worker RSS (MB): {results['stepup_rss_mb']}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.db}-{args.users}.json").write_text(
        json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
