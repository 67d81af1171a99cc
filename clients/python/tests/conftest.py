"""A real ``stepup serve`` for the client's tests: one process for the whole session, on
a free loopback port, with its own data directory and an API key of role ``app`` made by
``stepup apikey create`` in that same directory.

This directory has no ``__init__.py`` on purpose: its modules are imported by their own
names (``conftest``, ``stepup_testkit``, ``test_client_*``), which never clash with the
repository's ``tests`` package when both suites run in one pytest session.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from stepup_testkit import Server

STEPUP = [sys.executable, "-m", "stepup.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPUP_")}
    env.update(STEPUP_DATA_DIR=str(data_dir), STEPUP_ENV="development")
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("stepup-serve")
    data = home / "data"
    log = (home / "serve.log").open("wb")
    port = free_port()
    proc = subprocess.Popen([*STEPUP, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=home, env=_env(data), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"stepup serve exited with {proc.returncode}: "
                            f"{(home / 'serve.log').read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("stepup serve did not start within 60 s")
            time.sleep(0.2)
        out = subprocess.run([*STEPUP, "apikey", "create", "--role", "app",
                              "--name", "python client tests"],
                             cwd=home, env=_env(data), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        found = re.search(r"^key:\s+(\S+)\s*$", out.stdout, re.MULTILINE)
        assert found, "no key in the output of `stepup apikey create`"
        yield Server(base_url=base, data_dir=data, api_key=found.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def stepup_cli(server: Server) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``stepup ARGS…`` on the test server's data directory."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([*STEPUP, *args], cwd=server.data_dir.parent,
                             env=_env(server.data_dir), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return out

    return run


@pytest.fixture
def nowhere() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
