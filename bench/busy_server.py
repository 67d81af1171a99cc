#!/usr/bin/env python3
"""A server that spends a fixed CPU time on every request: how the event loop itself
treats connections when the worker is busy, with nothing of StepUp's in the way.

    python bench/busy_server.py PORT [--loop asyncio|uvloop] [--ms 2]
    wrk -t 2 -c 32 -d 10s --latency http://127.0.0.1:PORT/

Each request burns ``--ms`` of CPU on the loop (as a StepUp verification does, ~2 ms)
and answers ``{"valid":true}``. With uvloop a busy worker took one new connection per
turn of its loop, and each turn served every connection already open: of 32
connections opened at once the last got its first answer after ~1 s, a p99 of ~480 ms
over 10 s. With the standard library's loop all 32 are taken at once (bench/README.md,
"The c = 32 tail"); this is why ``stepup serve`` runs it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import uvicorn

BODY = b'{"valid":true}'


def make_app(ms: float) -> Any:
    seconds = ms / 1000

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": BODY})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--ms", type=float, default=2.0, help="CPU per request")
    args = ap.parse_args()
    uvicorn.run(make_app(args.ms), host="127.0.0.1", port=args.port, loop=args.loop,
                http="httptools", access_log=False, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
