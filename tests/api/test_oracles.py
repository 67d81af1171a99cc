"""No guessing oracle: the clock-drift hint never names a code that works later.

A wrong code that is the code of a coming step is answered with the hint ("your clock is
about N minutes ahead"), which confirms the guess; so that step is burnt before the
answer, and the code never logs in, not even when its time comes. A real phone whose
clock was ahead still gets in once its clock is synced and the burnt step has passed.

And what the user is asked to confirm is what is paid: the whole destination in every
message and page, and no look-alike or mistyped address or IBAN accepted.
"""

from __future__ import annotations

import httpx
import pytest

from stepup.delivery.messages import purpose_text
from stepup.domain.clock import FrozenClock
from tests.api.helpers import (
    PIN,
    auth,
    enable_totp,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
    verify,
)
from tests.pages.helpers import get, submit
from tests.pages.helpers import sign_up as portal_sign_up


async def with_totp(client: httpx.AsyncClient, clock: FrozenClock) -> str:
    await sign_up(client)
    return await enable_totp(client, await session_for(client), clock)


@pytest.mark.parametrize("steps", [2, 4, 20])
async def test_a_code_the_hint_named_never_logs_in(client: httpx.AsyncClient,
                                                   clock: FrozenClock, steps: int) -> None:
    secret = await with_totp(client, clock)
    guess = totp_now(secret, clock, steps)  # what a lucky guess would be
    body = problem(await verify(client, await login_token(client), "totp", guess), 400,
                   "invalid_code")
    assert body["clock_drift_minutes"] == max(1, steps // 2)
    # Its step comes into the window, then is the current one: refused each time.
    clock.advance(30 * (steps - 1))
    assert totp_now(secret, clock, 1) == guess
    r = await verify(client, await login_token(client), "totp", guess)
    assert r.status_code != 200
    problem(r, 409, "code_already_used")
    clock.advance(30)
    assert totp_now(secret, clock) == guess
    problem(await verify(client, await login_token(client), "totp", guess), 409,
            "code_already_used")
    # The next step is the user's again.
    clock.advance(30)
    assert (await verify(client, await login_token(client), "totp",
                         totp_now(secret, clock))).status_code == 200


async def test_a_hinted_code_still_counts_as_a_failure(client: httpx.AsyncClient,
                                                       clock: FrozenClock) -> None:
    secret = await with_totp(client, clock)
    lt = await login_token(client)
    for attempt in range(4):
        problem(await verify(client, lt, "totp", totp_now(secret, clock, 4 + attempt)), 400,
                "invalid_code")
    problem(await verify(client, lt, "totp", totp_now(secret, clock, 8)), 423,
            "method_locked")


async def test_a_real_phone_ahead_logs_in_after_a_sync(client: httpx.AsyncClient,
                                                       clock: FrozenClock) -> None:
    secret = await with_totp(client, clock)
    # The phone is 5 minutes ahead.
    body = problem(await verify(client, await login_token(client), "totp",
                                totp_now(secret, clock, 10)), 400, "invalid_code")
    assert body["clock_drift_minutes"] == 5 and "ahead" in body["detail"]
    # Synced, its right code is told apart from a wrong one: not counted, with how long.
    r = await verify(client, await login_token(client), "totp", totp_now(secret, clock))
    body = problem(r, 409, "code_already_used")
    assert "minute" in body["detail"] and "ahead" in body["detail"]
    wait = int(r.headers["retry-after"])
    assert 5 * 60 <= wait <= 6 * 60
    # Five more tries while waiting do not lock the method.
    for _ in range(5):
        clock.advance(30)
        problem(await verify(client, await login_token(client), "totp",
                             totp_now(secret, clock)), 409, "code_already_used")
    clock.advance(wait - 5 * 30)
    r = await verify(client, await login_token(client), "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated"


async def test_a_phone_behind_logs_in_at_once_after_a_sync(client: httpx.AsyncClient,
                                                           clock: FrozenClock) -> None:
    # Past steps never come back into the window: nothing to burn, nothing to wait for.
    secret = await with_totp(client, clock)
    lt = await login_token(client)
    body = problem(await verify(client, lt, "totp", totp_now(secret, clock, -10)), 400,
                   "invalid_code")
    assert body["clock_drift_minutes"] == -5
    assert (await verify(client, lt, "totp", totp_now(secret, clock))).status_code == 200


async def test_enrolment_hint_burns_nothing(client: httpx.AsyncClient,
                                            clock: FrozenClock) -> None:
    # Whoever enrols was just shown the seed: the hint tells them nothing new.
    await sign_up(client)
    token = await session_for(client)
    r = await client.post("/api/v1/me/methods/totp/enrollment", json={"pin": PIN},
                          headers=auth(token))
    secret = r.json()["secret"]
    r = await client.post("/api/v1/me/methods/totp/enrollment/confirm",
                          json={"code": totp_now(secret, clock, 10)}, headers=auth(token))
    assert problem(r, 400, "invalid_code")["clock_drift_minutes"] == 5
    r = await client.post("/api/v1/me/methods/totp/enrollment/confirm",
                          json={"code": totp_now(secret, clock)}, headers=auth(token))
    assert r.status_code == 200, r.text
    clock.advance(30)
    assert (await verify(client, await login_token(client), "totp",
                         totp_now(secret, clock))).status_code == 200


# --- what the user is asked to confirm is what is paid ----------------------------------

LOOKALIKE = "bc1q\u0430r0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"  # a Cyrillic а


@pytest.mark.parametrize(("destination", "reason"), [
    (LOOKALIKE, "not_ascii"),
    ("IBAN DE89\u00a03704 0044 0532 0130 00", "not_ascii"),  # a non-breaking space
    ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdd", "checksum"),
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "checksum"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "checksum"),
    ("DE89 3704 0044 0532 0130 01", "checksum"),
])
async def test_a_look_alike_or_mistyped_destination_is_refused(
        client: httpx.AsyncClient, destination: str, reason: str) -> None:
    await sign_up(client)
    token = await session_for(client)
    r = await client.post("/api/v1/me/operations", headers=auth(token), json={
        "type": "withdrawal",
        "details": {"amount": "0.25", "currency": "BTC", "destination": destination}})
    body = problem(r, 422, "validation_error")
    assert body["field"] == "details.destination" and body["reason"] == reason
    assert len(body["detail"]) > 20


def test_the_code_message_names_the_whole_destination() -> None:
    whole = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    for language in ("en", "ru"):
        text = purpose_text(language, "operation:op1",
                            {"amount": "0.25", "currency": "BTC", "destination": whole})
        assert whole in text and "…" not in text


@pytest.mark.parametrize(("language", "words"), [
    ("en", "only look like Latin letters"), ("ru", "только похожи на латинские буквы")])
async def test_the_portal_form_says_why(client: httpx.AsyncClient, language: str,
                                        words: str) -> None:
    await portal_sign_up(client, language=language)
    html = await get(client, "/operations/new")
    r = await submit(client, html, "/operations/new", amount="0.25", currency="BTC",
                     destination=LOOKALIKE)
    assert r.status_code == 422
    assert words in r.text and 'aria-invalid="true"' in r.text
    r = await submit(client, html, "/operations/new", amount="0.25", currency="BTC",
                     destination="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdd")
    assert r.status_code == 422
    assert ("check digits" if language == "en" else "контрольные цифры") in r.text
