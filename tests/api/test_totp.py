"""The authenticator app (TOTP): enrollment, the ±1 window, drift, replay, switches."""

from __future__ import annotations

import asyncio
import base64
import re
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
import segno

from stepup.domain.clock import FrozenClock
from tests.api.helpers import (
    PIN,
    auth,
    enable_backup_codes,
    enable_totp,
    login,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    totp_now,
    verify,
    wrong_totp,
)

ENROLL = "/api/v1/me/methods/totp/enrollment"
CONFIRM = "/api/v1/me/methods/totp/enrollment/confirm"


async def signed_in(client: httpx.AsyncClient) -> str:
    await sign_up(client)
    return await session_for(client)


def svg_modules(svg: str) -> list[list[bool]]:
    """Rasterise the path segno writes (M/m moves, h runs of dark modules)."""
    d = re.search(r'class="qrline"[^>]* d="([^"]+)"', svg)
    size = re.search(r'd="M0 0h(\d+)v', svg)
    assert d and size, svg[:300]
    n = int(size.group(1))
    grid = [[False] * n for _ in range(n)]
    x = y = 0.0
    for op, args in re.findall(r"([MmHh])([-\d. ]+)", d.group(1)):
        nums = [float(a) for a in args.split()]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            run = int(nums[0])
            for i in range(run):
                grid[int(y)][int(x) + i] = True
            x += run
    return grid


async def test_enrollment_needs_the_right_pin(client: httpx.AsyncClient) -> None:
    token = await signed_in(client)
    r = await client.post(ENROLL, json={"pin": "305817"}, headers=auth(token))
    body = problem(r, 400, "pin_invalid")
    assert "secret" not in body
    view = await method_view(client, token, "totp")
    assert view["enabled"] is False and view["pending"] is False
    problem(await client.post(CONFIRM, json={"code": "123456"}, headers=auth(token)), 409,
            "conflict")


async def test_enrollment_answer(client: httpx.AsyncClient) -> None:
    token = await signed_in(client)
    r = await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20  # 160 bits

    uri = urlparse(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/StepUp Test:jane@example.com"
    query = parse_qs(uri.query)
    assert query["issuer"] == ["StepUp Test"]
    assert query["secret"] == [secret]

    svg = body["qr_svg"]
    assert svg.lstrip().startswith("<svg") and svg.rstrip().endswith("</svg>")
    # The QR code shows exactly this URI (module by module, quiet zone included).
    expected = segno.make(body["otpauth_uri"], error="m")
    assert svg_modules(svg) == [[bool(v) for v in row] for row in expected.matrix_iter()]
    assert (await method_view(client, token, "totp"))["pending"] is True


async def test_qr_code_decodes_to_the_uri(client: httpx.AsyncClient) -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="no QR decoder installed")
    token = await signed_in(client)
    body = (await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))).json()
    qr = segno.make(body["otpauth_uri"], error="m")
    assert svg_modules(body["qr_svg"]) == [[bool(v) for v in row] for row in qr.matrix_iter()]
    img = [[0 if dark else 255 for dark in row for _ in range(4)]
           for row in svg_modules(body["qr_svg"]) for _ in range(4)]
    import numpy as np

    decoded = zxingcpp.read_barcodes(np.array(img, dtype=np.uint8))
    assert [d.text for d in decoded] == [body["otpauth_uri"]]


async def test_confirm_with_a_wrong_code_keeps_it_pending(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    token = await signed_in(client)
    body = (await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))).json()
    secret = body["secret"]
    for bad in (wrong_totp(secret, clock), "12345", "abcdef", ""):
        problem(await client.post(CONFIRM, json={"code": bad}, headers=auth(token)), 400,
                "invalid_code")
    view = await method_view(client, token, "totp")
    assert view["pending"] is True and view["enabled"] is False
    assert (await login(client)).json()["status"] == "authenticated"  # nothing protects yet

    r = await client.post(CONFIRM, json={"code": totp_now(secret, clock)}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True and r.json()["pending"] is False


async def test_starting_again_replaces_the_pending_secret(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    token = await signed_in(client)
    first = (await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))).json()
    second = (await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))).json()
    assert first["secret"] != second["secret"]
    problem(await client.post(CONFIRM, json={"code": totp_now(first["secret"], clock)},
                              headers=auth(token)), 400, "invalid_code")
    r = await client.post(CONFIRM, json={"code": totp_now(second["secret"], clock)},
                          headers=auth(token))
    assert r.status_code == 200


async def test_enrolling_an_enabled_method_is_a_conflict(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    token = await signed_in(client)
    await enable_totp(client, token, clock)
    problem(await client.post(ENROLL, json={"pin": PIN}, headers=auth(token)), 409,
            "method_already_enabled")


async def test_first_method_protects_login_the_second_nothing(client: httpx.AsyncClient,
                                                              clock: FrozenClock) -> None:
    token = await signed_in(client)
    await enable_totp(client, token, clock)
    totp = await method_view(client, token, "totp")
    assert totp["enabled"] and totp["protects"] == {"login": True, "withdrawal": False}
    await enable_backup_codes(client, token)
    backup = await method_view(client, token, "backup_codes")
    assert backup["protects"] == {"login": False, "withdrawal": False}


@pytest.mark.parametrize("offset", [-1, 0, 1])
async def test_neighbouring_steps_are_accepted(client: httpx.AsyncClient, clock: FrozenClock,
                                              offset: int) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    clock.advance(30)  # so the previous step is not the one the enrollment spent
    r = await verify(client, await login_token(client), "totp",
                     totp_now(secret, clock, offset))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("offset", [-2, 2])
async def test_two_steps_away_is_refused(client: httpx.AsyncClient, clock: FrozenClock,
                                         offset: int) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    problem(await verify(client, await login_token(client), "totp",
                         totp_now(secret, clock, offset)), 400, "invalid_code")


@pytest.mark.parametrize(("offset", "minutes", "word"), [(10, 5, "ahead"), (-10, -5, "behind")])
async def test_a_drifted_code_is_refused_with_a_clock_hint(
        client: httpx.AsyncClient, clock: FrozenClock, offset: int, minutes: int,
        word: str) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    lt = await login_token(client)
    body = problem(await verify(client, lt, "totp", totp_now(secret, clock, offset)), 400,
                   "invalid_code")
    assert "clock" in body["detail"] and word in body["detail"]
    assert body["clock_drift_minutes"] == minutes
    # A plain wrong code gets no hint.
    body = problem(await verify(client, lt, "totp", wrong_totp(secret, clock)), 400,
                   "invalid_code")
    assert "clock_drift_minutes" not in body


async def test_an_accepted_step_is_never_accepted_again(client: httpx.AsyncClient,
                                                        clock: FrozenClock) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    code = totp_now(secret, clock)
    assert (await verify(client, await login_token(client), "totp", code)).status_code == 200
    # Refused, and told apart from a wrong code (it does not count toward the lock).
    problem(await verify(client, await login_token(client), "totp", code), 409,
            "code_already_used")

    clock.advance(30)
    later = totp_now(secret, clock)
    assert (await verify(client, await login_token(client), "totp", later)).status_code == 200
    # The first code is still inside the ±1 window, but its step was spent: refused.
    assert totp_now(secret, clock, -1) == code
    problem(await verify(client, await login_token(client), "totp", code), 409,
            "code_already_used")
    # And an older step than the last accepted one, though in the window, too.
    clock.advance(30)
    problem(await verify(client, await login_token(client), "totp", later), 409,
            "code_already_used")
    # Out of the window, the same code is just a wrong code again.
    clock.advance(60)
    problem(await verify(client, await login_token(client), "totp", later), 400,
            "invalid_code")


async def test_the_enrollment_code_cannot_be_replayed_to_log_in(client: httpx.AsyncClient,
                                                                clock: FrozenClock) -> None:
    token = await signed_in(client)
    secret = (await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))).json()["secret"]
    code = totp_now(secret, clock)
    assert (await client.post(CONFIRM, json={"code": code}, headers=auth(token))).status_code \
        == 200
    problem(await verify(client, await login_token(client), "totp", code), 409,
            "code_already_used")


async def test_two_racing_logins_with_one_code_only_one_wins(client: httpx.AsyncClient,
                                                             clock: FrozenClock) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    tokens = [await login_token(client) for _ in range(2)]
    code = totp_now(secret, clock)
    answers = await asyncio.gather(*(verify(client, t, "totp", code) for t in tokens))
    # The loser is told the code was already used: a double submit, not a guess.
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]


async def test_two_racing_verifies_of_one_login_token(client: httpx.AsyncClient,
                                                      clock: FrozenClock) -> None:
    secret = await enable_totp(client, await signed_in(client), clock)
    lt = await login_token(client)
    answers = await asyncio.gather(verify(client, lt, "totp", totp_now(secret, clock)),
                                   verify(client, lt, "totp", totp_now(secret, clock, 1)))
    assert sorted(r.status_code for r in answers)[0] == 200
    assert [r.status_code for r in answers].count(200) == 1, [r.text for r in answers]


async def test_switches_need_a_code_from_this_method(client: httpx.AsyncClient,
                                                     clock: FrozenClock) -> None:
    token = await signed_in(client)
    secret = await enable_totp(client, token, clock)
    codes = await enable_backup_codes(client, token)
    url = "/api/v1/me/methods/totp"

    problem(await client.patch(url, headers=auth(token), json={
        "protects": {"withdrawal": True}, "code": wrong_totp(secret, clock)}), 400,
        "invalid_code")
    problem(await client.patch(url, headers=auth(token), json={
        "protects": {"withdrawal": True}, "code": codes[0]}), 400, "invalid_code")
    problem(await client.patch(url, headers=auth(token), json={
        "protects": {"withdrawal": True}}), 422, "validation_error")
    assert (await method_view(client, token, "totp"))["protects"]["withdrawal"] is False

    body = problem(await client.patch(url, headers=auth(token), json={
        "protects": {"transfer": True}, "code": totp_now(secret, clock)}), 422,
        "validation_error")
    assert body["field"] == "protects" and "transfer" in body["detail"]
    problem(await client.patch(url, headers=auth(token), json={
        "protects": {}, "code": totp_now(secret, clock)}), 422, "validation_error")

    code = totp_now(secret, clock)
    r = await client.patch(url, headers=auth(token), json={
        "protects": {"withdrawal": True, "login": False}, "code": code})
    assert r.status_code == 200, r.text
    assert r.json()["protects"] == {"login": False, "withdrawal": True}
    # Login is no longer protected by anything.
    assert (await login(client)).json()["status"] == "authenticated"
    # The same code cannot switch again.
    problem(await client.patch(url, headers=auth(token), json={
        "protects": {"login": True}, "code": code}), 409, "code_already_used")

    clock.advance(30)
    r = await client.patch(url, headers=auth(token), json={
        "protects": {"login": True}, "code": totp_now(secret, clock)})
    assert r.json()["protects"] == {"login": True, "withdrawal": True}
    assert (await login(client)).json()["status"] == "second_factor_required"


async def test_switching_a_method_that_is_not_enabled(client: httpx.AsyncClient) -> None:
    token = await signed_in(client)
    problem(await client.patch("/api/v1/me/methods/totp", headers=auth(token), json={
        "protects": {"login": True}, "code": "123456"}), 409, "method_not_enabled")


async def test_disable_needs_a_code_then_login_asks_no_second_factor(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await signed_in(client)
    secret = await enable_totp(client, token, clock)
    url = "/api/v1/me/methods/totp/disable"
    problem(await client.post(url, headers=auth(token), json={}), 422, "validation_error")
    problem(await client.post(url, headers=auth(token),
                              json={"code": wrong_totp(secret, clock)}), 400, "invalid_code")
    assert (await method_view(client, token, "totp"))["enabled"] is True
    assert (await login(client)).json()["status"] == "second_factor_required"

    r = await client.post(url, headers=auth(token), json={"code": totp_now(secret, clock)})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False
    view = await method_view(client, token, "totp")
    assert view["enabled"] is False and view["pending"] is False
    assert (await login(client)).json()["status"] == "authenticated"
    problem(await client.post(url, headers=auth(token), json={"code": "123456"}), 409,
            "method_not_enabled")
