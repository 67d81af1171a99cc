"""``stepup serve`` as an operator runs it: a real process on a free loopback port."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import STEPUP, clean_env, free_port, serve, wait_until_up
from tests.support.smaps import kb, mapped_kb


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([*STEPUP, "serve", "--port", str(port)], cwd=tmp_path,
                            env=clean_env(STEPUP_DATA_DIR=str(data)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(base, "/healthz"):
            pytest.fail("stepup serve did not start")
        yield base, data
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_creates_schema_and_private_keys(served: tuple[str, Path]) -> None:
    base, data = served
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    keys = data / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    r = httpx.post(f"{base}/api/v1/accounts", json={
        "email": "ops@example.com", "password": "violet-harbour-7-lanterns", "pin": "417293"})
    assert r.status_code == 201


def test_production_refuses_without_keys_and_secure_cookies(tmp_path: Path) -> None:
    r = subprocess.run([*STEPUP, "serve", "--port", str(free_port())], cwd=tmp_path,
                       env=clean_env(STEPUP_ENV="production", STEPUP_COOKIE_SECURE="false",
                                     STEPUP_DATA_DIR=str(tmp_path / "d")),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "STEPUP_KEYRING" in r.stderr
    assert "STEPUP_SECRET_KEY" in r.stderr
    assert "Secure" in r.stderr
    assert not (tmp_path / "d" / "keys.json").exists()


@pytest.mark.parametrize(("spec", "says"), [
    ("acme_missing.adapter:Adapter", "cannot import 'acme_missing.adapter'"),
    ("stepup.config:Settings", "not a subclass of stepup.adapter.Adapter")])
def test_a_bad_operator_adapter_refuses_to_start(tmp_path: Path, spec: str, says: str
                                                 ) -> None:
    r = subprocess.run([*STEPUP, "serve", "--port", str(free_port())], cwd=tmp_path,
                       env=clean_env(STEPUP_ADAPTER=spec, STEPUP_DATA_DIR=str(tmp_path / "d")),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "STEPUP_ADAPTER" in r.stderr and says in r.stderr, r.stderr


def test_migrate_reports_revision(tmp_path: Path) -> None:
    r = subprocess.run([*STEPUP, "migrate"], cwd=tmp_path,
                       env=clean_env(STEPUP_DATA_DIR=str(tmp_path / "d")),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "schema at revision" in r.stdout


def test_user_unlock_lifts_a_lock_and_says_so(served: tuple[str, Path]) -> None:
    base, data = served
    email = "locked@example.com"
    httpx.post(f"{base}/api/v1/accounts", json={
        "email": email, "password": "violet-harbour-7-lanterns", "pin": "417293"})
    token = httpx.post(f"{base}/api/v1/login", json={
        "email": email, "password": "violet-harbour-7-lanterns"}).json()["session_token"]
    h = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        r = httpx.post(f"{base}/api/v1/me/methods/totp/enrollment", json={"pin": "999111"},
                       headers=h)
    assert r.status_code == 423
    r = httpx.post(f"{base}/api/v1/me/methods/totp/enrollment", json={"pin": "417293"},
                   headers=h)
    assert r.status_code == 423
    out = subprocess.run([*STEPUP, "user", "unlock", email], cwd=data.parent,
                         env=clean_env(STEPUP_DATA_DIR=str(data)), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pin" in out.stdout
    r = httpx.post(f"{base}/api/v1/me/methods/totp/enrollment", json={"pin": "417293"},
                   headers=h)
    assert r.status_code == 200
    missing = subprocess.run([*STEPUP, "user", "unlock", "nobody@example.com"],
                             cwd=data.parent, env=clean_env(STEPUP_DATA_DIR=str(data)),
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "No account" in missing.stderr


@pytest.mark.parametrize("flag", [None, "--no-access-log"])
def test_access_log_is_on_unless_turned_off(tmp_path: Path, flag: str | None) -> None:
    port = free_port()
    proc = subprocess.Popen([*STEPUP, "serve", "--port", str(port), *([flag] if flag else [])],
                            cwd=tmp_path, env=clean_env(STEPUP_DATA_DIR=str(tmp_path / "d")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_up(base, "/healthz"):
            pytest.fail("stepup serve did not start")
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert ('"GET /readyz HTTP/1.1" 200' in out) is (flag is None)
    assert "Application startup complete" in out  # the server's own log stays


@pytest.mark.parametrize(("workers", "setting"), [(2, None), (2, "0"), (1, None)])
def test_serve_keeps_the_sqlite_file_in_memory(tmp_path: Path, workers: int,
                                               setting: str | None) -> None:
    """The supervisor of several workers maps the whole database file, and no worker
    does, unless STEPUP_SQLITE_RESIDENT_MB=0; a single worker's process, which has
    SQLite's locks on the file, never does (store/sqlite_resident.py)."""
    data = tmp_path / "data"
    env = clean_env(STEPUP_DATA_DIR=str(data),
                    **({"STEPUP_SQLITE_RESIDENT_MB": setting} if setting else {}))
    subprocess.run([*STEPUP, "migrate"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    db = data / "stepup.db"
    migrated = db.stat().st_size
    server, base = serve(tmp_path, env, workers=workers)
    try:
        assert wait_until_up(base), "stepup serve did not start"
        held = mapped_kb(db, server.pid)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        in_workers = [mapped_kb(db, pid) for pid in children]
    finally:
        server.terminate()
        server.wait(timeout=30)
    if setting == "0" or workers == 1:
        assert held == 0
    else:
        assert kb(migrated) <= held <= kb(db.stat().st_size)
    assert len(in_workers) >= (workers if workers > 1 else 0)
    assert not any(in_workers)
