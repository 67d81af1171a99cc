"""Running ``stepup`` as an operator does, in a subprocess: the command, a clean
environment, a free loopback port, and waiting until a served instance answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

STEPUP = [sys.executable, "-m", "stepup.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any STEPUP_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
    env.update(extra)
    return env


def wait_until_up(base: str, path: str = "/readyz", seconds: float = 30) -> bool:
    """Poll ``base + path`` until it answers 200; False if it never did in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def serve(cwd: Path, env: dict[str, str], *, port: int | None = None, workers: int = 2
          ) -> tuple[subprocess.Popen[bytes], str]:
    """``stepup serve --workers N`` on ``port`` (else a free one), output discarded:
    the process and its base URL. The caller waits for it and ends it."""
    port = port or free_port()
    server = subprocess.Popen([*STEPUP, "serve", "--port", str(port), "--workers", str(workers)],
                              cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}"
