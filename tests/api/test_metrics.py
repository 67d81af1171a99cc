"""/metrics: what an operator graphs — latency per route, verifications, locks, messages."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from tests.api.helpers import auth, enable_totp, session_for, sign_up


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no sample {prefix!r}"
    return float(lines[0].rsplit(" ", 1)[1])


async def test_metrics_count_verifications_locks_and_latency(client: httpx.AsyncClient,
                                                             clock: FrozenClock) -> None:
    before = (await client.get("/metrics")).text
    await sign_up(client)
    token = await session_for(client)
    await enable_totp(client, token, clock)
    for _ in range(5):
        await client.patch("/api/v1/me/methods/totp", json={"protects": {"withdrawal": True},
                                                           "code": "000000"},
                           headers=auth(token))
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    invalid = 'stepup_verifications_total{method="totp",outcome="invalid_code"}'
    was = _value(before, invalid) if invalid in before else 0.0
    assert _value(text, invalid) - was == 5
    assert 'stepup_locks_total{scope="method:totp"}' in text
    # A code sent to the locked method is refused before it is compared, and counted so.
    locked = 'stepup_verifications_total{method="totp",outcome="locked"}'
    r = await client.patch("/api/v1/me/methods/totp", json={"protects": {"withdrawal": True},
                                                           "code": "000000"},
                           headers=auth(token))
    assert r.status_code == 423
    after = (await client.get("/metrics")).text
    assert _value(after, locked) - (_value(text, locked) if locked in text else 0.0) == 1
    assert 'route="/api/v1/me/methods/{method_type}"' in text  # templates, not raw paths
    assert "/api/v1/me/methods/totp\"" not in text
    # SQLite's write turn, waited for and held (tests/unit/test_sqlite_writer_turn.py)
    assert "stepup_sqlite_write_turn_wait_seconds_bucket" in text
    assert "stepup_sqlite_write_turn_held_seconds_sum" in text
