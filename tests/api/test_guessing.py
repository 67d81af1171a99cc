"""Guessing codes and PINs: method locks that double, the PIN lock, the account lock,
and an audit event for every failed verification."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import (
    PIN,
    auth,
    enable_backup_codes,
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
    verify,
    wrong_totp,
)

UA = "Mozilla/5.0 (StepUp tests)"


async def totp_user(client: httpx.AsyncClient, clock: FrozenClock) -> tuple[str, str]:
    await sign_up(client)
    token = await session_for(client)
    return token, await enable_totp(client, token, clock)


async def guess_totp(client: httpx.AsyncClient, lt: str, secret: str, clock: FrozenClock,
                     times: int) -> httpx.Response:
    """``times`` wrong codes; all but the last must be plain refusals. Returns the last."""
    for _ in range(times - 1):
        problem(await verify(client, lt, "totp", wrong_totp(secret, clock)), 400,
                "invalid_code")
    return await verify(client, lt, "totp", wrong_totp(secret, clock))


def locked_for(r: httpx.Response, code: str = "method_locked") -> int:
    body = problem(r, 423, code)
    seconds = int(r.headers["Retry-After"])
    assert body["retry_after"] == seconds
    return seconds


async def test_five_wrong_codes_lock_the_method_for_a_minute(client: httpx.AsyncClient,
                                                            clock: FrozenClock) -> None:
    _, secret = await totp_user(client, clock)
    lt = await login_token(client)
    assert locked_for(await guess_totp(client, lt, secret, clock, 5)) == 60
    # Locked: even the right code is refused, and says how long is left.
    clock.advance(59)
    assert locked_for(await verify(client, lt, "totp", totp_now(secret, clock))) == 1
    clock.advance(2)  # +61 s
    assert (await verify(client, lt, "totp", totp_now(secret, clock))).status_code == 200


async def test_the_next_lock_doubles_up_to_an_hour(client: httpx.AsyncClient,
                                                   clock: FrozenClock) -> None:
    _, secret = await totp_user(client, clock)
    lengths = []
    for _ in range(8):
        seconds = locked_for(await guess_totp(client, await login_token(client), secret,
                                              clock, 5))
        lengths.append(seconds)
        clock.advance(seconds - 1)
        lt = await login_token(client)
        assert locked_for(await verify(client, lt, "totp", totp_now(secret, clock))) == 1
        clock.advance(1)
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert (await verify(client, lt, "totp", totp_now(secret, clock))).status_code == 200


async def test_a_success_resets_the_count_and_the_doubling(client: httpx.AsyncClient,
                                                           clock: FrozenClock) -> None:
    _, secret = await totp_user(client, clock)
    lt = await login_token(client)
    assert locked_for(await guess_totp(client, lt, secret, clock, 5)) == 60
    clock.advance(61)
    problem(await guess_totp(client, lt, secret, clock, 4), 400, "invalid_code")
    assert (await verify(client, lt, "totp", totp_now(secret, clock))).status_code == 200
    # Four more wrong codes after the success are not a lock...
    lt = await login_token(client)
    problem(await guess_totp(client, lt, secret, clock, 4), 400, "invalid_code")
    # ...the fifth is, and for one minute again, not two.
    assert locked_for(await verify(client, lt, "totp", wrong_totp(secret, clock))) == 60


async def test_a_method_lock_does_not_lock_other_methods(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    token, secret = await totp_user(client, clock)
    codes = await enable_backup_codes(client, token)
    lt = await login_token(client)
    locked_for(await guess_totp(client, lt, secret, clock, 5))
    assert (await verify(client, lt, "backup_codes", codes[0])).status_code == 200


async def test_five_wrong_pins_lock_the_pin_for_fifteen_minutes(client: httpx.AsyncClient,
                                                                clock: FrozenClock) -> None:
    await sign_up(client)
    token = await session_for(client)
    url = "/api/v1/me/methods/totp/enrollment"
    for _ in range(4):
        problem(await client.post(url, json={"pin": "305817"}, headers=auth(token)), 400,
                "pin_invalid")
    r = await client.post(url, json={"pin": "305817"}, headers=auth(token))
    assert locked_for(r) == 900
    clock.advance(899)
    token = await session_for(client)  # (the session idles out meanwhile)
    assert locked_for(await client.post(url, json={"pin": PIN}, headers=auth(token))) == 1
    clock.advance(2)
    assert (await client.post(url, json={"pin": PIN}, headers=auth(token))).status_code == 200


async def test_fifty_failures_across_methods_lock_the_account_for_a_day(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token, secret = await totp_user(client, clock)
    codes = await enable_backup_codes(client, token)
    # Ten rounds of five wrong codes, alternating methods, each waiting out its method lock.
    for round_ in range(10):
        lt = await login_token(client)
        for i in range(5):
            method = "totp" if round_ % 2 == 0 else "backup_codes"
            bad = wrong_totp(secret, clock) if method == "totp" else "00000-00000"
            last = await verify(client, lt, method, bad)
            if i < 4:
                problem(last, 400, "invalid_code")
        if round_ < 9:
            clock.advance(locked_for(last))
            assert (await client.get("/api/v1/me", headers=auth(token))).status_code == 200
    # The 50th failure locks the account (and says so), for 24 hours.
    assert locked_for(last, "account_locked") == 86400
    # Locked: even correct codes, for either method, from any path.
    locked_for(await verify(client, lt, "totp", totp_now(secret, clock)), "account_locked")
    locked_for(await verify(client, lt, "backup_codes", codes[0]), "account_locked")
    r = await client.patch("/api/v1/me/methods/totp", headers=auth(token), json={
        "protects": {"withdrawal": True}, "code": totp_now(secret, clock)})
    locked_for(r, "account_locked")
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": "violet-harbour-7-lanterns"})
    locked_for(r, "account_locked")
    clock.advance(86399)
    r = await client.post("/api/v1/login", json={"email": "jane@example.com",
                                                 "password": "violet-harbour-7-lanterns"})
    assert locked_for(r, "account_locked") == 1
    clock.advance(1)
    lt = await login_token(client)
    assert (await verify(client, lt, "backup_codes", codes[0])).status_code == 200
    assert (await verify(client, await login_token(client), "totp", totp_now(secret, clock))
            ).status_code == 200


async def test_every_failed_verification_is_audited(client: httpx.AsyncClient,
                                                    clock: FrozenClock,
                                                    runtime: Runtime) -> None:
    token, secret = await totp_user(client, clock)
    await enable_backup_codes(client, token)
    lt = await login_token(client)
    headers = {"User-Agent": UA}
    await client.post("/api/v1/login/verify", headers=headers, json={
        "login_token": lt, "method": "totp", "code": wrong_totp(secret, clock)})
    await client.post("/api/v1/login/verify", headers=headers, json={
        "login_token": lt, "method": "backup_codes", "code": "00000-00000"})
    await client.post("/api/v1/me/methods/totp/disable", headers={**headers, **auth(token)},
                      json={"code": wrong_totp(secret, clock)})
    await client.post("/api/v1/me/methods/totp/enrollment", headers={**headers, **auth(token)},
                      json={"pin": "305817"})
    await client.post("/api/v1/me/methods/backup_codes/regenerate",
                      headers={**headers, **auth(token)}, json={"code": "00000-00000"})

    async with runtime.sessionmaker() as db:
        rows = (await db.execute(select(AuditEvent).where(
            AuditEvent.event.in_(["code.failed", "pin.failed"])).order_by(AuditEvent.id)
        )).scalars().all()
    seen = [(e.event, e.data.get("method"), e.data.get("purpose")) for e in rows]
    assert seen == [("code.failed", "totp", "login"),
                    ("code.failed", "backup_codes", "login"),
                    ("code.failed", "totp", "manage:totp"),
                    ("pin.failed", "totp", None),
                    ("code.failed", "backup_codes", "manage:backup_codes")], seen
    for e in rows:
        assert e.ip == "203.0.113.7"
        assert e.user_agent == UA
        assert e.user_id is not None
        assert e.created_at == clock.now()
