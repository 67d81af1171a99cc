"""``stepup apikey`` and ``stepup keys`` as an operator runs them: real processes on an
embedded database in a temporary data directory."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.server import STEPUP, clean_env


@pytest.fixture
def stepup(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = clean_env(STEPUP_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*STEPUP, *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
        if ok:
            assert r.returncode == 0, (r.stdout, r.stderr)
        return r

    run("migrate")
    return run


def test_apikey_create_list_revoke(stepup) -> None:  # type: ignore[no-untyped-def]
    out = stepup("apikey", "create", "--role", "app", "--name", "client portal").stdout
    key = re.search(r"key:\s+(sk_app_\S+)", out)
    key_id = re.search(r"id:\s+(\S+)", out)
    assert key and key_id, out
    assert "cannot be shown again" in out

    listing = stepup("apikey", "list").stdout
    assert key_id.group(1) in listing and "client portal" in listing and "active" in listing
    assert key.group(1) not in listing  # never shown again

    stepup("apikey", "revoke", key_id.group(1))
    assert "revoked" in stepup("apikey", "list").stdout
    again = stepup("apikey", "revoke", key_id.group(1), ok=False)
    assert again.returncode == 1 and "No active API key" in again.stderr

    bad = stepup("apikey", "create", "--role", "admin", ok=False)
    assert bad.returncode == 1 and "role must be one of" in bad.stderr


def test_keys_rotate_and_retire_receipts(stepup) -> None:  # type: ignore[no-untyped-def]
    first = re.search(r"signed with (\S+)", stepup("keys", "rotate-receipts").stdout)
    second = re.search(r"signed with (\S+)", stepup("keys", "rotate-receipts").stdout)
    assert first and second and first.group(1) != second.group(1)
    published = json.loads(stepup("keys", "list-receipts").stdout)
    assert {k["kid"] for k in published["keys"]} == {first.group(1), second.group(1)}
    assert all("d" not in k for k in published["keys"])

    refused = stepup("keys", "retire-receipts", second.group(1), ok=False)
    assert refused.returncode == 1 and "active key cannot be retired" in refused.stderr
    stepup("keys", "retire-receipts", first.group(1))
    published = json.loads(stepup("keys", "list-receipts").stdout)
    assert [k["kid"] for k in published["keys"]] == [second.group(1)]


def test_apps_and_their_keys(stepup) -> None:  # type: ignore[no-untyped-def]
    out = stepup("app", "create", "acme", "--display-name", "Acme Broker",
                 "--url", "https://acme.example").stdout
    acme = re.search(r"id:\s+(\S+)", out)
    assert acme, out
    listing = stepup("app", "list").stdout
    assert "portal" in listing and "Acme Broker" in listing and "https://acme.example" in listing
    assert stepup("app", "create", "acme", ok=False).returncode == 1  # names are unique

    stepup("apikey", "create", "--role", "app", "--app", "acme", "--name", "acme web")
    # Without --app a key goes to the app "default", made on first use.
    stepup("apikey", "create", "--role", "app", "--name", "old portal")
    keys = stepup("apikey", "list").stdout
    assert re.search(r"^\S+\s+app\s+acme\s.*acme web$", keys, re.M), keys
    assert re.search(r"^\S+\s+app\s+default\s.*old portal$", keys, re.M), keys
    assert "default" in stepup("app", "list").stdout
    missing = stepup("apikey", "create", "--role", "app", "--app", "nope", ok=False)
    assert missing.returncode == 1 and "No app named 'nope'" in missing.stderr
    support = stepup("apikey", "create", "--role", "support", "--app", "acme", ok=False)
    assert support.returncode == 1 and "Only keys of role app" in support.stderr
