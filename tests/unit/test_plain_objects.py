"""``store.loaded.plain``: a read-only row as a mapped object, built without calling its
class. A fresh worker process may build one before anything else has touched the ORM
(the first API call it serves): the object must read as any other then too."""

from __future__ import annotations

import subprocess
import sys

FIRST_THING = """
from stepup.store import loaded
from stepup.store.models import ApiKey
key = loaded.plain(ApiKey, {"id": "k1", "name": "portal", "revoked_at": None,
                            "rate_per_minute": 600})
assert key.id == "k1" and key.revoked_at is None and key.rate_per_minute == 600
print("ok")
"""


def test_the_first_object_of_a_fresh_process_reads_its_values() -> None:
    done = subprocess.run([sys.executable, "-c", FIRST_THING], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
