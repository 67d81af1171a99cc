"""``stepup serve --workers 2`` and SIGTERM, as systemd stops it: a request in flight is
answered in full before the workers exit, and the service then stops cleanly."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.support.server import clean_env, serve, wait_until_up


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    # Deliberately slow password hashing: a sign-up takes about a second or more, long
    # enough to be in flight when the signal comes.
    env = clean_env(STEPUP_DATA_DIR=str(tmp_path / "data"), STEPUP_ARGON2_TIME_COST="40",
                    STEPUP_ARGON2_MEMORY_KIB="65536")
    server, base = serve(tmp_path, env)
    try:
        assert wait_until_up(base), "stepup serve did not start"
        answer: dict[str, object] = {}

        def sign_up() -> None:
            started = time.monotonic()
            r = httpx.post(f"{base}/api/v1/accounts", timeout=30, json={
                "email": "late@example.com", "password": "violet-harbour-7-lanterns",
                "pin": "417293"})
            answer.update(status=r.status_code, seconds=time.monotonic() - started)

        request = threading.Thread(target=sign_up)
        request.start()
        time.sleep(0.4)  # the sign-up is hashing now
        server.send_signal(signal.SIGTERM)
        request.join(timeout=30)
        assert answer.get("status") == 201, answer
        assert float(answer["seconds"]) > 0.4  # type: ignore[arg-type]  # it was in flight
        assert server.wait(timeout=30) == 0
        # Stopped: nothing listens any more.
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            raise AssertionError("still serving after SIGTERM")
        except httpx.TransportError:
            pass
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
