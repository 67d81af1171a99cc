"""``stepup keys rotate-data`` / ``retire-data`` / ``list-data`` / ``new-data-key`` as an
operator runs them: real processes on an embedded database whose key ring is the
development keys file."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import pytest

from stepup.domain.keyring import KeyRing
from tests.support.server import STEPUP, clean_env, free_port


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stepup(tmp_path: Path, data: Path):  # type: ignore[no-untyped-def]
    def run(*args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*STEPUP, *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, env=clean_env(STEPUP_DATA_DIR=str(data),
                                                     STEPUP_STAFF_PASSWORD="violet-harbour-7",
                                                     **env))
        if ok:
            assert r.returncode == 0, (r.stdout, r.stderr)
        return r

    run("migrate")
    return run


def ring(data: Path) -> list[str]:
    keys = data / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    return list(KeyRing.parse(json.loads(keys.read_text())["keyring"]).kids)


def test_rotate_then_retire_with_the_keys_file(stepup, data: Path) -> None:  # type: ignore[no-untyped-def]
    stepup("staff", "create", "--email", "sam@example.com", "--name", "Sam", "--role",
           "support")
    stepup("keys", "rotate-receipts")
    assert ring(data) == ["dev1"]

    refused = stepup("keys", "retire-data", "dev1", ok=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("stepup: dev1 is the active key")
    assert len(refused.stderr.strip().splitlines()) == 1

    out = stepup("keys", "rotate-data", "--new-key", "--batch", "1").stdout
    assert "added key dev2" in out
    # The staff member's authenticator app is a method of their user.
    assert re.search(r"^methods.secret_ct\s+re-encrypted\s+1\s+now: dev2 1 \(active\)$", out,
                     re.M)
    assert re.search(r"^passkeys.secret_ct\s+re-encrypted\s+0\s+now: none$", out, re.M)
    assert "every sealed value is on dev2" in out and "retire-data dev1" in out
    assert ring(data) == ["dev2", "dev1"]
    assert not list(data.glob(".keys.json*"))  # no temporary file left behind

    again = stepup("keys", "rotate-data").stdout  # resumable: nothing left to do
    assert re.search(r"^methods.secret_ct\s+re-encrypted\s+0\s+now: dev2 1", again, re.M)
    listing = stepup("keys", "list-data").stdout
    assert "key ring (the keys file): dev2 (active), dev1" in listing

    refused = stepup("keys", "retire-data", "dev2", ok=False)
    assert refused.returncode == 1 and "dev2 is the active key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    out = stepup("keys", "retire-data", "dev1").stdout
    assert "retired dev1" in out and "removed dev1 from" in out
    assert ring(data) == ["dev2"]
    assert "dev1 was already retired" in stepup("keys", "retire-data", "dev1").stdout

    # The next new key is dev3, never a retired id again.
    assert "added key dev3" in stepup("keys", "rotate-data", "--new-key").stdout
    assert ring(data) == ["dev3", "dev2"]
    assert "OK:" in stepup("audit", "verify").stdout


def test_with_stepup_keyring_the_operator_edits_the_ring(stepup, data: Path) -> None:  # type: ignore[no-untyped-def]
    spec = stepup("keys", "new-data-key", "--kid", "k2").stdout.strip()
    assert KeyRing.parse(spec).kids == ("k2",)
    fresh = stepup("keys", "new-data-key").stdout.strip()
    assert re.fullmatch(r"k\d{8}:[A-Za-z0-9+/]{43}=", fresh) and fresh != spec

    old = json.loads((data / "keys.json").read_text())["keyring"]
    env = {"STEPUP_KEYRING": f"{spec},{old}"}
    refused = stepup("keys", "rotate-data", "--new-key", ok=False, **env)
    assert refused.returncode == 1 and "STEPUP_KEYRING is set" in refused.stderr
    stepup("keys", "rotate-receipts")  # sealed with dev1, the keys file's ring
    stepup("staff", "create", "--email", "sam@example.com", "--name", "Sam", "--role",
           "support")
    refused = stepup("keys", "retire-data", "dev1", ok=False, **env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "stepup: 2 values are still sealed with dev1 (methods.secret_ct 1, "
        "receipt_keys.secret_ct 1): run `stepup keys rotate-data` first.")
    out = stepup("keys", "rotate-data", **env).stdout
    assert re.search(r"^receipt_keys.secret_ct\s+re-encrypted\s+1\s+now: k2 1 \(active\)$",
                     out, re.M), out
    out = stepup("keys", "retire-data", "dev1", **env).stdout
    assert "remove dev1 from STEPUP_KEYRING" in out
    # A process started with the retired key still configured drops it; put first, it is
    # refused in one line.
    assert "key ring (STEPUP_KEYRING): k2 (active)\n" in stepup("keys", "list-data", **env).stdout
    refused = stepup("keys", "list-data", ok=False, STEPUP_KEYRING=f"{old},{spec}")
    assert refused.returncode == 2 and "the active key 'dev1' was retired" in refused.stderr
    refused = stepup("serve", "--port", str(free_port()), ok=False,
                     STEPUP_KEYRING=f"{old},{spec}")
    assert refused.returncode == 2 and "the active key 'dev1' was retired" in refused.stderr
