#!/usr/bin/env python3
"""The adversarial probe of issue 14, re-run against the fixed code: what an attacker
gets, measured over HTTP, in about a minute.

    python bench/probe.py [--json]

Starts ``stepup serve`` (one worker, development keys, default limits) on a fresh
SQLite data directory on 127.0.0.1 and a free port, as ``bench/write_stall.py`` does,
and measures:

- sign-ups accepted from one client network in a burst before the 429, and how long
  the burst took;
- wrong passwords accepted from one network before its 429; the owner's right password
  from another network meanwhile (answer and time); wrong passwords from ever new
  networks (a distributed attack, sent in parallel) until the account's ceiling; then
  the owner again, without and with a remembered device;
- ``GET /api/v1/me/events?before=99999999999999999999``;
- SMS enrolment to +881 (satellite) and +232 (Sierra Leone);
- a TOTP code of a future step that the clock-drift hint named, sent again when its
  step comes into the window (the wait is at most one 30-s step).

Client networks are told apart by ``X-Forwarded-For``: the server trusts 127.0.0.1 as
its proxy (``STEPUP_TRUSTED_PROXIES``), as behind nginx. Prints a Markdown table (or
JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
from write_stall import STEPUP, free_port, wait_ready

PASSWORD = "violet-harbour-7-lanterns"  # noqa: S105 (a throwaway account)
PIN = "417293"
OWNER = "owner@example.com"
HOME = "203.0.113.5"  # the owner's network
ATTACKER = "198.51.100.77"  # one attacker network
BURST = "192.0.2.10"  # the sign-up burst's network
SIGNUP_CAP = 60  # stop the burst here if no 429 comes
GUESS_CAP = 40  # wrong passwords from one network, at most
SPREAD_CAP = 150  # wrong passwords from ever new networks, at most
STEP = 30


def _from(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def _auth(token: str, ip: str = HOME) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **_from(ip)}


async def _timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    r = await call()
    return r, time.perf_counter() - started


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code") or r.json().get("status") or "")
    except ValueError:
        return ""


async def signup_burst(c: httpx.AsyncClient) -> dict[str, Any]:
    started = time.perf_counter()
    accepted, last = 0, None
    for i in range(SIGNUP_CAP):
        last = await c.post("/api/v1/accounts", headers=_from(BURST), json={
            "email": f"pump-{i}@example.com", "password": PASSWORD, "pin": PIN})
        if last.status_code != 201:
            break
        accepted += 1
    assert last is not None
    return {"accepted": accepted, "seconds": round(time.perf_counter() - started, 2),
            "then": f"{last.status_code} {_code(last)}",
            "retry_after": last.headers.get("retry-after")}


async def login(c: httpx.AsyncClient, ip: str, password: str = PASSWORD,
                device: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"email": OWNER, "password": password}
    if device:
        body["remember_device_token"] = device
    return await c.post("/api/v1/login", headers=_from(ip), json=body)


async def owner_with_totp(c: httpx.AsyncClient) -> tuple[str, str]:
    """Sign the owner up, enable an authenticator app; answers (session, secret)."""
    r = await c.post("/api/v1/accounts", headers=_from(HOME),
                     json={"email": OWNER, "password": PASSWORD, "pin": PIN})
    r.raise_for_status()
    r = await login(c, HOME)
    r.raise_for_status()
    session = str(r.json()["session_token"])
    r = await c.post("/api/v1/me/methods/totp/enrollment", headers=_auth(session),
                     json={"pin": PIN})
    r.raise_for_status()
    secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
    r = await c.post("/api/v1/me/methods/totp/enrollment/confirm", headers=_auth(session),
                     json={"code": pyotp.TOTP(secret).now()})
    r.raise_for_status()
    return session, secret


async def second_step(c: httpx.AsyncClient, code: str, *, remember: bool = False
                      ) -> httpx.Response:
    r = await login(c, HOME)
    r.raise_for_status()
    return await c.post("/api/v1/login/verify", headers=_from(HOME), json={
        "login_token": r.json()["login_token"], "method": "totp", "code": code,
        "remember_device": remember})


async def _next_step() -> None:
    """Sleep until half a second into the next 30-s step."""
    await asyncio.sleep(STEP - time.time() % STEP + 0.5)


async def remembered_device(c: httpx.AsyncClient, secret: str) -> str:
    """Log the owner in with a fresh step (enrolment spent the current one), asking to
    be remembered; answers the device token."""
    await _next_step()
    r = await second_step(c, pyotp.TOTP(secret).now(), remember=True)
    r.raise_for_status()
    return str(r.json()["remember_device_token"])


async def hinted_code(c: httpx.AsyncClient, secret: str) -> dict[str, Any]:
    """Guess the code two steps ahead: the hint names it; is it refused in its time?"""
    if time.time() % STEP > 20:  # too late in this step to stay two steps ahead
        await _next_step()
    step = int(time.time()) // STEP
    guess = pyotp.TOTP(secret).at((step + 2) * STEP)
    hint = await second_step(c, guess)
    await _next_step()  # one step later the guess is inside the ±1 window
    later = await second_step(c, guess)
    return {"hint": f"{hint.status_code} {_code(hint)}, clock_drift_minutes="
                    f"{hint.json().get('clock_drift_minutes')}",
            "later": f"{later.status_code} {_code(later)}"}


async def password_guessing(c: httpx.AsyncClient, device: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refused = None
    wrong = 0
    for _ in range(GUESS_CAP):
        r = await login(c, ATTACKER, "wrong-password-123")
        if r.status_code != 401:
            refused = r
            break
        wrong += 1
    assert refused is not None
    out["one_network"] = {"wrong_answered_401": wrong,
                          "then": f"{refused.status_code} {_code(refused)}",
                          "retry_after": refused.headers.get("retry-after")}
    r, seconds = await _timed(lambda: login(c, HOME))
    out["owner_meanwhile"] = {"answer": f"{r.status_code} {_code(r)}",
                              "seconds": round(seconds, 2)}
    r = await login(c, ATTACKER)
    out["right_password_from_the_attackers_network"] = f"{r.status_code} {_code(r)}"

    # Distributed: every guess from a network of its own, ten at a time in parallel.
    # (The owner's success just now ended the run: the ceiling counts from there.)
    started = time.perf_counter()
    failures, n, ceiling = 0, 0, None
    while ceiling is None and n < SPREAD_CAP:
        batch = await asyncio.gather(*(
            login(c, f"10.{(n + i) // 250}.{(n + i) % 250}.1", "wrong-password-123")
            for i in range(10)))
        n += 10
        for r in batch:
            if r.status_code == 401:
                failures += 1
            elif ceiling is None:
                ceiling = r
    out["distributed"] = {
        "failures_before_the_ceiling": failures, "networks": n,
        "seconds": round(time.perf_counter() - started, 1),
        "then": f"{ceiling.status_code} {_code(ceiling)}" if ceiling else "no ceiling"}
    r = await login(c, HOME)
    out["owner_at_the_ceiling"] = f"{r.status_code} {_code(r)}"
    r = await login(c, HOME, device=device)
    out["owner_with_remembered_device"] = f"{r.status_code} {_code(r)}"
    return out


async def sms_destinations(c: httpx.AsyncClient, session: str) -> dict[str, str]:
    out = {}
    for phone in ("+881612345678", "+23225123456"):
        r = await c.post("/api/v1/me/methods/sms/enrollment", headers=_auth(session),
                         json={"pin": PIN, "phone": phone})
        body = r.json()
        out[phone] = f"{r.status_code} {body.get('code')} ({body.get('detail')})"
    return out


async def measure(base: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        results["signups"] = await signup_burst(c)
        session, secret = await owner_with_totp(c)
        r = await c.get("/api/v1/me/events?before=99999999999999999999",
                        headers=_auth(session))
        results["events_before_huge"] = f"{r.status_code} {_code(r)}"
        results["sms"] = await sms_destinations(c, session)
        device = await remembered_device(c, secret)
        results["hinted_code"] = await hinted_code(c, secret)
        results["passwords"] = await password_guessing(c, device)
    return results


def table(r: dict[str, Any]) -> str:
    s, p = r["signups"], r["passwords"]
    rows = [
        ("Sign-ups from one network in a burst",
         f"{s['accepted']} accepted in {s['seconds']} s, then {s['then']} "
         f"(Retry-After {s['retry_after']} s)"),
        ("Wrong passwords from one network",
         f"{p['one_network']['wrong_answered_401']} answered 401, then "
         f"{p['one_network']['then']} (Retry-After {p['one_network']['retry_after']} s)"),
        ("The owner's right password from another network, meanwhile",
         f"{p['owner_meanwhile']['answer']} in {p['owner_meanwhile']['seconds']} s"),
        ("The right password from the attacker's network",
         p["right_password_from_the_attackers_network"]),
        ("Wrong passwords from ever new networks (10 in parallel)",
         f"{p['distributed']['failures_before_the_ceiling']} answered 401 (after the owner's "
         f"success), then "
         f"{p['distributed']['then']} ({p['distributed']['seconds']} s)"),
        ("The owner at the ceiling: without / with a remembered device",
         f"{p['owner_at_the_ceiling']} / {p['owner_with_remembered_device']}"),
        ("`GET /api/v1/me/events?before=99999999999999999999`", r["events_before_huge"]),
        *((f"SMS enrolment to {phone}", answer) for phone, answer in r["sms"].items()),
        ("A TOTP code two steps ahead: the hint", r["hinted_code"]["hint"]),
        ("… the same code once its step is in the window", r["hinted_code"]["later"]),
    ]
    lines = ["| probe | answer now |", "|---|---|"]
    lines += [f"| {what} | {answer} |" for what, answer in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON, not Markdown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepup-probe-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
        env["STEPUP_DATA_DIR"] = str(work / "data")
        env["STEPUP_TRUSTED_PROXIES"] = '["127.0.0.1"]'
        subprocess.run([*STEPUP, "migrate"], env=env, capture_output=True, check=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (work / "serve.log").open("w")
        server = subprocess.Popen([*STEPUP, "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        started = time.perf_counter()
        try:
            wait_ready(f"{base}/healthz")
            results = asyncio.run(measure(base))
        except BaseException:
            log.flush()
            sys.stderr.write((work / "serve.log").read_text()[-4000:])
            raise
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        results["probe_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
        print(f"\n(probe took {results['probe_seconds']} s)")


if __name__ == "__main__":
    main()
