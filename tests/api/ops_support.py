"""Steps the operation tests share: start, PIN, challenge and confirm a withdrawal, read
codes from the development outbox, and switch a method on for withdrawal."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.methods import registry
from stepup.services.runtime import Runtime
from tests.api.helpers import PIN, auth, enable_backup_codes, enable_totp, totp_now
from tests.support import instances

DESTINATION = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
WITHDRAWAL = {"amount": "0.25", "currency": "BTC", "destination": DESTINATION}
PHONE = "+79161234567"
CODE = re.compile(r"\b(\d{6})\b")
OPS = "/api/v1/me/operations"


async def start(client: httpx.AsyncClient, token: str, details: dict[str, Any] | None = None,
                op_type: str = "withdrawal") -> httpx.Response:
    return await client.post(OPS, json={"type": op_type, "details": details or WITHDRAWAL},
                             headers=auth(token))


async def started(client: httpx.AsyncClient, token: str, **details: Any) -> str:
    r = await start(client, token, {**WITHDRAWAL, **details})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pin_required", r.json()
    return str(r.json()["id"])


async def pin(client: httpx.AsyncClient, token: str, op_id: str, value: str = PIN
              ) -> httpx.Response:
    return await client.post(f"{OPS}/{op_id}/pin", json={"pin": value}, headers=auth(token))


async def challenge(client: httpx.AsyncClient, token: str, op_id: str, method: str
                    ) -> httpx.Response:
    return await client.post(f"{OPS}/{op_id}/challenge", json={"method": method},
                             headers=auth(token))


async def confirm(client: httpx.AsyncClient, token: str, op_id: str, method: str, code: str
                  ) -> httpx.Response:
    return await client.post(f"{OPS}/{op_id}/confirm", json={"method": method, "code": code},
                             headers=auth(token))


async def read(client: httpx.AsyncClient, token: str, op_id: str) -> dict[str, Any]:
    r = await client.get(f"{OPS}/{op_id}", headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def past_pin(client: httpx.AsyncClient, token: str, **details: Any) -> str:
    """A new withdrawal whose PIN was accepted: it waits for a security code."""
    op_id = await started(client, token, **details)
    r = await pin(client, token, op_id)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "code_required", r.json()
    return op_id


# --- the development outbox -----------------------------------------------------------

async def outbox(client: httpx.AsyncClient, to: str, channel: str | None = None
                 ) -> list[dict[str, Any]]:
    """Messages to ``to``, newest first."""
    r = await client.get("/api/v1/dev/outbox", params={"to": to})
    assert r.status_code == 200, r.text
    return [m for m in r.json()["messages"] if channel is None or m["channel"] == channel]


async def last_message(client: httpx.AsyncClient, to: str, channel: str) -> str:
    messages = await outbox(client, to, channel)
    assert messages, f"no {channel} message to {to}"
    return str(messages[0]["body"])


async def last_code(client: httpx.AsyncClient, to: str, channel: str) -> str:
    m = CODE.search(await last_message(client, to, channel))
    assert m, f"no code in the last {channel} message to {to}"
    return m.group(1)


# --- methods that protect withdrawal ----------------------------------------------------

async def protect(client: httpx.AsyncClient, token: str, method: str, code: str,
                  withdrawal: bool = True) -> None:
    r = await client.patch(f"/api/v1/me/methods/{method}",
                           json={"protects": {"withdrawal": withdrawal}, "code": code},
                           headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["protects"]["withdrawal"] is withdrawal, r.json()


async def totp_for_withdrawal(client: httpx.AsyncClient, token: str, clock: FrozenClock
                              ) -> str:
    secret = await enable_totp(client, token, clock)
    await protect(client, token, "totp", totp_now(secret, clock))
    clock.advance(30)
    return secret


async def backup_codes_for_withdrawal(client: httpx.AsyncClient, token: str) -> list[str]:
    codes = await enable_backup_codes(client, token)
    await protect(client, token, "backup_codes", codes[0])
    return codes[1:]


async def oob_for_withdrawal(client: httpx.AsyncClient, token: str, clock: FrozenClock,
                             channel: str, to: str) -> None:
    """Enable an out-of-band method with the code from the outbox, then switch it on for
    withdrawal with a fresh management code."""
    d = registry.descriptor(channel)
    assert d is not None and d.destination is not None
    params = {d.destination: to}
    r = await client.post(f"/api/v1/me/methods/{channel}/enrollment",
                          json={"pin": PIN, **params}, headers=auth(token))
    assert r.status_code == 202, r.text
    r = await client.post(f"/api/v1/me/methods/{channel}/enrollment/confirm",
                          json={"code": await last_code(client, to, channel)},
                          headers=auth(token))
    assert r.status_code == 200, r.text
    clock.advance(61)  # the resend cooldown
    r = await client.post(f"/api/v1/me/methods/{channel}/challenge", headers=auth(token))
    assert r.status_code == 202, r.text
    await protect(client, token, channel, await last_code(client, to, channel))
    clock.advance(61)


# --- an app with other settings on the same (already wiped) database ------------------

@contextlib.asynccontextmanager
async def app_with(settings: Settings, clock: FrozenClock, **overrides: Any
                   ) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    s = settings.model_copy(update=overrides)
    rt = Runtime.build(s, clock)
    try:
        async with instances.http_client(rt) as c:
            yield c, rt
    finally:
        await rt.engine.dispose()


async def totp_on_behalf(client: httpx.AsyncClient, key: str, user_id: str,
                         clock: FrozenClock, *, withdrawal: bool = False) -> str:
    """Enrol TOTP for a user of the key's app through the integration API (and switch it
    on for withdrawals); returns the secret, the clock one step on."""
    base = f"/api/v1/users/{user_id}/methods/totp"
    r = await client.post(f"{base}/enrollment", json={}, headers=auth(key))
    assert r.status_code == 200, r.text
    secret = str(parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0])
    r = await client.post(f"{base}/enrollment/confirm",
                          json={"code": totp_now(secret, clock)}, headers=auth(key))
    assert r.status_code == 200, r.text
    clock.advance(30)
    if withdrawal:
        r = await client.patch(base, json={"protects": {"withdrawal": True},
                                           "code": totp_now(secret, clock)},
                               headers=auth(key))
        assert r.status_code == 200, r.text
        clock.advance(30)
    return secret
