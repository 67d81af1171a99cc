"""Backup codes: the set, single use, races, regeneration and the low-codes warning."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.api.helpers import (
    PIN,
    auth,
    enable_backup_codes,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    verify,
)

FORMAT = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")
ENROLL = "/api/v1/me/methods/backup_codes/enrollment"
REGENERATE = "/api/v1/me/methods/backup_codes/regenerate"
DISABLE = "/api/v1/me/methods/backup_codes/disable"


async def with_codes(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    await sign_up(client)
    token = await session_for(client)
    return token, await enable_backup_codes(client, token)


async def test_enrollment_needs_the_pin(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    problem(await client.post(ENROLL, json={"pin": "305817"}, headers=auth(token)), 400,
            "pin_invalid")
    assert (await method_view(client, token, "backup_codes"))["enabled"] is False


async def test_ten_codes_formatted_xxxxx_xxxxx_enabled_at_once(
        client: httpx.AsyncClient) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    codes = r.json()["codes"]
    assert len(codes) == 10 == len(set(codes))
    assert all(FORMAT.match(c) for c in codes), codes
    view = await method_view(client, token, "backup_codes")
    assert view["enabled"] is True and view["remaining"] == 10
    # The first method: it protects login.
    assert view["protects"]["login"] is True
    problem(await client.post(ENROLL, json={"pin": PIN}, headers=auth(token)), 409,
            "method_already_enabled")


async def test_typed_forms_are_accepted_and_each_code_is_single_use(
        client: httpx.AsyncClient) -> None:
    token, codes = await with_codes(client)
    typed = [codes[0].upper(), codes[1].replace("-", ""), f"  {codes[2][:3]} {codes[2][3:]} ",
             codes[3]]
    for i, code in enumerate(typed):
        r = await verify(client, await login_token(client), "backup_codes", code)
        assert r.status_code == 200, r.text
        assert r.json()["backup_codes_remaining"] == 9 - i
        assert (await method_view(client, token, "backup_codes"))["remaining"] == 9 - i
    # A used code is refused as used, in any typed form, and never counts toward the lock.
    for used in (codes[0], codes[2], codes[3], codes[1].upper()) * 2:
        problem(await verify(client, await login_token(client), "backup_codes", used), 409,
                "code_already_used")
    assert (await method_view(client, token, "backup_codes"))["remaining"] == 6
    assert (await verify(client, await login_token(client), "backup_codes", codes[4])
            ).status_code == 200


async def test_made_up_and_malformed_codes_are_refused(client: httpx.AsyncClient) -> None:
    _, codes = await with_codes(client)
    lt = await login_token(client)
    for bad in ("00000-00000", "abcd", codes[0] + "0", ""):
        problem(await verify(client, lt, "backup_codes", bad), 400, "invalid_code")
    assert (await verify(client, lt, "backup_codes", codes[0])).status_code == 200


async def test_two_racing_uses_of_one_code_only_one_wins(client: httpx.AsyncClient) -> None:
    token, codes = await with_codes(client)
    tokens = [await login_token(client) for _ in range(2)]
    answers = await asyncio.gather(*(verify(client, t, "backup_codes", codes[5])
                                     for t in tokens))
    # The loser is told the code was already used: a double submit, not a guess.
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    assert (await method_view(client, token, "backup_codes"))["remaining"] == 9


async def test_warning_when_two_or_fewer_remain(client: httpx.AsyncClient) -> None:
    _, codes = await with_codes(client)
    seen = []
    for code in codes[:9]:
        body = (await verify(client, await login_token(client), "backup_codes", code)).json()
        seen.append((body["backup_codes_remaining"], body["backup_codes_low"]))
    assert seen == [(9, False), (8, False), (7, False), (6, False), (5, False), (4, False),
                    (3, False), (2, True), (1, True)]


async def test_regenerate_with_a_current_code_voids_every_old_code(
        client: httpx.AsyncClient) -> None:
    token, codes = await with_codes(client)
    problem(await client.post(REGENERATE, json={"code": "00000-00000"}, headers=auth(token)),
            400, "invalid_code")
    r = await client.post(REGENERATE, json={"code": codes[0]}, headers=auth(token))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    fresh = r.json()["codes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert (await method_view(client, token, "backup_codes"))["remaining"] == 10
    for old in (codes[1], codes[5], codes[9]):  # (the wrong code above makes 4 failures)
        problem(await verify(client, await login_token(client), "backup_codes", old), 400,
                "invalid_code")
    assert (await verify(client, await login_token(client), "backup_codes", fresh[0])
            ).status_code == 200


async def test_disable_then_enable_again_issues_a_new_set(client: httpx.AsyncClient) -> None:
    token, codes = await with_codes(client)
    problem(await client.post(DISABLE, json={"code": "00000-00000"}, headers=auth(token)), 400,
            "invalid_code")
    r = await client.post(DISABLE, json={"code": codes[0]}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False
    view = await method_view(client, token, "backup_codes")
    assert view["enabled"] is False and "remaining" not in view

    again = await enable_backup_codes(client, token)
    assert not set(again) & set(codes)
    for old in codes[1:3]:
        problem(await verify(client, await login_token(client), "backup_codes", old), 400,
                "invalid_code")
    assert (await verify(client, await login_token(client), "backup_codes", again[0])
            ).status_code == 200
