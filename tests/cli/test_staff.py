"""``stepup staff`` as an operator runs it: real processes on an embedded database."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.support.server import STEPUP, clean_env

PASSWORD = "staff-correct-horse-42"


@pytest.fixture
def stepup(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = clean_env(STEPUP_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str, ok: bool = True, extra: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*STEPUP, *args], cwd=tmp_path, env={**env, **(extra or {})},
                           capture_output=True, text=True, timeout=60, input=stdin)
        if ok:
            assert r.returncode == 0, (r.stdout, r.stderr)
        return r

    run("migrate")
    return run


def test_staff_create_list_disable(stepup) -> None:  # type: ignore[no-untyped-def]
    out = stepup("staff", "create", "--role", "supervisor", "--email", "sue@example.com",
                 "--name", "Sue Supervisor", extra={"STEPUP_STAFF_PASSWORD": PASSWORD}).stdout
    uri = re.search(r"uri:\s+(otpauth://totp/\S+)", out)
    assert uri, out
    query = parse_qs(urlparse(uri.group(1)).query)
    assert len(query["secret"][0]) == 32 and query["issuer"] == ["StepUp support"]
    assert "sue%40example.com" in uri.group(1) or "sue@example.com" in uri.group(1)
    assert "█" in out or "▀" in out or "▄" in out  # the QR code, in the terminal
    assert PASSWORD not in out

    # The password prompt (typed twice) when no environment variable gives it.
    out = stepup("staff", "create", "--role", "support", "--email", "ann@example.com",
                 "--name", "Ann Agent", stdin=f"{PASSWORD}\n{PASSWORD}\n").stdout
    assert "role:   support" in out

    listing = stepup("staff", "list").stdout
    assert "sue@example.com" in listing and "supervisor" in listing and "active" in listing
    assert "ann@example.com" in listing
    assert query["secret"][0] not in listing

    stepup("staff", "disable", "ann@example.com")
    listing = stepup("staff", "list").stdout
    ann = next(line for line in listing.splitlines() if "ann@example.com" in line)
    assert "disabled" in ann

    bad = stepup("staff", "create", "--role", "admin", "--email", "x@example.com",
                 "--name", "X", extra={"STEPUP_STAFF_PASSWORD": PASSWORD}, ok=False)
    assert bad.returncode == 1 and "role must be one of" in bad.stderr
    dup = stepup("staff", "create", "--role", "support", "--email", "sue@example.com",
                 "--name", "Again", extra={"STEPUP_STAFF_PASSWORD": PASSWORD}, ok=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    weak = stepup("staff", "create", "--role", "support", "--email", "w@example.com",
                  "--name", "W", extra={"STEPUP_STAFF_PASSWORD": "short"}, ok=False)
    assert weak.returncode == 1 and "at least" in weak.stderr
    missing = stepup("staff", "disable", "nobody@example.com", ok=False)
    assert missing.returncode == 1 and "No staff member" in missing.stderr
