"""A command that needs the database, run where there is none, says so in one line and
changes nothing: no traceback, no data directory, no keys."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.server import STEPUP, clean_env

COMMANDS = [("apikey", "list"), ("apikey", "create", "--role", "app"), ("app", "list"),
            ("user", "unlock", "jane@example.com"), ("keys", "list-receipts"),
            ("keys", "rotate-data", "--new-key"), ("keys", "retire-data", "dev1"),
            ("keys", "list-data"), ("audit", "verify"), ("staff", "list")]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_no_database_is_one_line_and_nothing_made(tmp_path: Path, args: tuple[str, ...]
                                                  ) -> None:
    data = tmp_path / "data"
    r = subprocess.run([*STEPUP, *args], cwd=tmp_path, env=clean_env(STEPUP_DATA_DIR=str(data)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "stepup migrate" in lines[0] and "STEPUP_DATA_DIR" in lines[0]
    assert "STEPUP_DATABASE_URL" in lines[0]
    assert not data.exists() and list(tmp_path.iterdir()) == []


def test_a_database_without_the_schema_is_told_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stepup.db").touch()
    r = subprocess.run([*STEPUP, "apikey", "list"], cwd=tmp_path,
                       env=clean_env(STEPUP_DATA_DIR=str(data)), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "no StepUp schema" in r.stderr, r.stderr
    assert not (data / "keys.json").exists()


def test_apikey_list_shows_app_scopes_rate_and_utc_times(tmp_path: Path) -> None:
    env = clean_env(STEPUP_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str) -> str:
        r = subprocess.run([*STEPUP, *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return r.stdout

    run("migrate")
    run("app", "create", "acme")
    run("apikey", "create", "--role", "app", "--app", "acme", "--scope", "verify",
        "--scope", "users", "--rate", "120", "--name", "acme web")
    header, row = run("apikey", "list").splitlines()
    assert all(w in header for w in ("app", "scopes", "rate/min", "created", "last used"))
    assert re.search(r"^\S+\s+app\s+acme\s+users,verify\s+120\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+"
                     r"never\s+active\s+acme web$", row), row
