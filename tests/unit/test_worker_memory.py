"""What a serving worker keeps in memory (bench/README.md, "RSS"): the libraries only some
requests or commands need stay out until they are used, and argon2's blocks go back to
the system. Each check runs in a fresh interpreter, as a worker starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Loaded by the request, page or command that needs them, never by starting a worker.
ON_DEMAND = ("alembic", "httpx", "webauthn", "cbor2", "OpenSSL", "segno", "rich",
             "pygments")


def _run(code: str, tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEPUP_", "MALLOC_"))}
    env["STEPUP_DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_started_worker_has_not_loaded_what_few_requests_need(tmp_path: Path) -> None:
    loaded = _run(f"""
        import json, sys
        from stepup.web import factory
        factory.app()
        print(json.dumps({{"loaded": [m for m in {ON_DEMAND!r} if m in sys.modules]}}))
    """, tmp_path)
    assert loaded["loaded"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_argon2_blocks_are_given_back_after_each_hash(tmp_path: Path) -> None:
    # The first hash maps its 19 MiB block; glibc would then raise its mmap threshold,
    # and every later block would be carved from the heap and kept there.
    heap = _run("""
        import ctypes, json
        from stepup.domain.hashing import Hasher
        from stepup.web.factory import fixed_mmap_threshold

        class Info(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks",
                        "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                        "keepcost")]

        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = Info
        fixed_mmap_threshold()
        Hasher(b"k" * 32)  # its dummy hash: the first block
        before = libc.mallinfo2().arena
        hasher = Hasher(b"k" * 32)
        hasher.hash_password("correct horse")
        print(json.dumps({"grown": libc.mallinfo2().arena - before}))
    """, tmp_path)
    assert heap["grown"] < 4 * 2**20
