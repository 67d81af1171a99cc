"""Account security through the API: changing the password (other sessions end), the PIN
(password plus a second factor), and "Forgot password?" (a single-use e-mail link, the
same answer for any address, every session ended, the second factor still asked)."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage

from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import account_security, notifications
from stepup.services.runtime import Actor
from stepup.store import queries
from stepup.store.models import AuditEvent, NotificationQueue, PasswordReset
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    PASSWORD,
    PIN,
    auth,
    enable_totp,
    login,
    problem,
    session_for,
    totp_now,
    verify,
    wrong_totp,
)
from tests.api.oob_support import Stack

NEW_PASSWORD = "quiet-meadow-41-otters"
NEW_PIN = "582046"
LINK = re.compile(r"http://testserver/password/reset\?token=([A-Za-z0-9_-]+)")


async def signed_in(stack: Stack, email: str = EMAIL) -> str:
    """A new account whose e-mail is verified (so that, with no method, its withdrawals
    are confirmed by a code to it), set in the store: verifying it through the sign-up
    message would queue a notice of its own into these tests' counts."""
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": PASSWORD, "pin": PIN})
    assert r.status_code == 201, r.text
    async with stack.rt.db() as db:
        user = await queries.get_user_by_email(db, email)
        assert user is not None
        user.email_verified = True
        await db.commit()
    return await session_for(stack.client, email)


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def events(stack: Stack, name: str) -> list[AuditEvent]:
    async with stack.rt.db() as db:
        q = select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)
        return list((await db.execute(q)).scalars().all())


async def change_password(stack: Stack, token: str, current: str = PASSWORD,
                          new: str = NEW_PASSWORD) -> int:
    r = await stack.client.post("/api/v1/me/password", headers=auth(token), json={
        "current_password": current, "new_password": new})
    return r.status_code


async def reset_link(stack: Stack, email: str = EMAIL) -> str:
    """Ask for a link and read it out of the e-mail the sender delivers."""
    r = await stack.client.post("/api/v1/password/forgot", json={"email": email})
    assert r.status_code == 202, r.text
    await notifications.deliver_due(stack.rt)
    mails = [m for m in stack.mail_to(email) if "reset your password" in str(m["Subject"])]
    assert mails, "no reset e-mail"
    found = LINK.search(text_of(mails[-1]))
    assert found, text_of(mails[-1])
    return found.group(1)


# --- changing the password -------------------------------------------------------------


async def test_changing_the_password_ends_the_other_sessions_and_is_told(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    other = await session_for(stack.client)
    assert await change_password(stack, token) == 204
    # This session goes on; the other one is over.
    assert (await stack.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    problem(await stack.client.get("/api/v1/me", headers=auth(other)), 401,
            "not_authenticated")
    # The old password no longer works, the new one does.
    problem(await login(stack.client), 401, "invalid_credentials")
    assert (await login(stack.client, password=NEW_PASSWORD)).status_code == 200
    [event] = await events(stack, "account.password_changed")
    assert event.data["sessions_ended"] == 1
    assert await notifications.deliver_due(stack.rt) == 1
    [mail] = [m for m in stack.mail_to(EMAIL) if "security notice" in str(m["Subject"])]
    assert "The password of your account was changed." in text_of(mail)


async def test_a_wrong_current_password_is_refused_and_throttled_like_a_login(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    for _ in range(10):
        assert await change_password(stack, token, current="not-my-password-1") == 401
    assert len(await events(stack, "password.check_failed")) == 10
    # The e-mail's throttle from this network now refuses logins and changes alike.
    r = await stack.client.post("/api/v1/me/password", headers=auth(token), json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    problem(r, 429, "rate_limited")
    problem(await login(stack.client), 429, "rate_limited")


async def test_the_new_password_follows_the_sign_up_rules(start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    for weak in ("short", "password1234", EMAIL):
        r = await stack.client.post("/api/v1/me/password", headers=auth(token), json={
            "current_password": PASSWORD, "new_password": weak})
        body = problem(r, 422, "validation_error")
        assert body.get("field") in (None, "new_password"), body
    # A refused new password costs no guess and changes nothing.
    assert await events(stack, "password.check_failed") == []
    assert (await login(stack.client)).status_code == 200


# --- changing the PIN ------------------------------------------------------------------


async def new_withdrawal_pin_ok(stack: Stack, token: str, pin: str) -> bool:
    r = await stack.client.post("/api/v1/me/operations", headers=auth(token), json={
        "type": "withdrawal",
        "details": {"amount": "10", "currency": "EUR", "destination": "DE89370400440532013000"}})
    assert r.status_code == 201, r.text
    r = await stack.client.post(f"/api/v1/me/operations/{r.json()['id']}/pin",
                                headers=auth(token), json={"pin": pin})
    return r.status_code == 200


async def test_changing_the_pin_needs_the_password_and_a_code(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await enable_totp(stack.client, token, clock)
    r = await stack.client.get("/api/v1/me/pin/methods", headers=auth(token))
    assert r.json() == {"methods": [{"type": "totp"}], "account_email": False}

    async def change(**body: str) -> int:
        r = await stack.client.post("/api/v1/me/pin", headers=auth(token), json={
            "password": PASSWORD, "new_pin": NEW_PIN, **body})
        return r.status_code

    # No code, a wrong code, a wrong password: nothing changes.
    assert await change() == 422
    assert await change(method="totp", code=wrong_totp(secret, clock)) == 400
    assert await change(password="not-my-password-1", method="totp",
                        code=totp_now(secret, clock)) == 401
    assert await change(method="sms", code="123456") == 409  # not enabled
    assert await change(method="totp", code=totp_now(secret, clock), new_pin="111111") == 422
    assert await change(method="totp", code=totp_now(secret, clock)) == 204
    [event] = await events(stack, "account.pin_changed")
    assert event.data["method"] == "totp"
    assert await new_withdrawal_pin_ok(stack, token, NEW_PIN)
    clock.advance(30)
    assert not await new_withdrawal_pin_ok(stack, token, PIN)
    await notifications.deliver_due(stack.rt)
    assert any("The PIN of your account was changed." in text_of(m)
               for m in stack.mail_to(EMAIL))


async def test_without_a_method_the_pin_is_confirmed_by_a_code_to_the_account_email(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    r = await stack.client.get("/api/v1/me/pin/methods", headers=auth(token))
    assert r.json()["account_email"] is True
    assert [m["type"] for m in r.json()["methods"]] == ["email"]
    # The code is required here too (README): a second factor, even with no method.
    r = await stack.client.post("/api/v1/me/pin", headers=auth(token), json={
        "password": PASSWORD, "new_pin": NEW_PIN})
    assert problem(r, 422, "validation_error").get("field") == "code"
    r = await stack.client.post("/api/v1/me/pin/challenge", headers=auth(token), json={})
    assert r.status_code == 202, r.text
    code = stack.last_code("email", EMAIL)
    assert "to change your PIN" in text_of(stack.mail_to(EMAIL)[-1])
    r = await stack.client.post("/api/v1/me/pin", headers=auth(token), json={
        "password": PASSWORD, "new_pin": NEW_PIN, "method": "email", "code": code})
    assert r.status_code == 204, r.text
    assert (await stack.me(token))["identities"]["email_verified"] is True
    assert await new_withdrawal_pin_ok(stack, token, NEW_PIN)


async def test_a_code_for_another_purpose_does_not_change_the_pin(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    # A withdrawal's code to the account e-mail (no method protects it) …
    r = await stack.client.post("/api/v1/me/operations", headers=auth(token), json={
        "type": "withdrawal",
        "details": {"amount": "10", "currency": "EUR", "destination": "DE89370400440532013000"}})
    op = r.json()["id"]
    r = await stack.client.post(f"/api/v1/me/operations/{op}/pin", headers=auth(token),
                                json={"pin": PIN})
    assert r.status_code == 200, r.text
    r = await stack.client.post(f"/api/v1/me/operations/{op}/challenge", headers=auth(token),
                                json={"method": "email"})
    assert r.status_code == 202, r.text
    code = stack.last_code("email", EMAIL)
    # … does not confirm a new PIN.
    r = await stack.client.post("/api/v1/me/pin", headers=auth(token), json={
        "password": PASSWORD, "new_pin": NEW_PIN, "method": "email", "code": code})
    assert r.status_code in (400, 409), r.text
    assert await events(stack, "account.pin_changed") == []


# --- forgot password -------------------------------------------------------------------


async def test_forgot_password_answers_the_same_for_any_address(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    await signed_in(stack)
    known = await stack.client.post("/api/v1/password/forgot", json={"email": EMAIL})
    unknown = await stack.client.post("/api/v1/password/forgot",
                                      json={"email": "nobody@example.com"})
    invalid = await stack.client.post("/api/v1/password/forgot", json={"email": "not-an-email"})
    assert known.status_code == unknown.status_code == invalid.status_code == 202
    assert known.content == unknown.content == invalid.content == b""
    await notifications.deliver_due(stack.rt)
    assert stack.mail_to("nobody@example.com") == []
    [mail] = stack.mail_to(EMAIL)
    body = text_of(mail)
    assert LINK.search(body) and "30 minutes" in body
    # Stored hashed only; the link is dropped from the queue once it is sent.
    token = LINK.search(body).group(1)  # type: ignore[union-attr]
    async with stack.rt.db() as db:
        [reset] = (await db.execute(select(PasswordReset))).scalars().all()
        assert reset.token_hash == stack.rt.hasher.token_hash(token)
        rows = (await db.execute(select(NotificationQueue))).scalars().all()
        assert all("reset_url" not in r.data for r in rows)
    assert len(await events(stack, "password.reset_requested")) == 3


async def test_racing_reset_requests_leave_one_live_link(start_stack: StartStack) -> None:
    """A new link spends the ones before it, even when the requests race (PostgreSQL
    runs their transactions side by side): the account is never left with two."""
    stack = await start_stack(password_resets_per_email_per_hour=10)
    await signed_in(stack)
    rt = stack.rt
    asked = [await account_security.count_reset_request(rt, Actor(ip=f"198.51.100.{i}"),
                                                        EMAIL) for i in range(6)]
    await asyncio.gather(*(account_security.send_reset_link(rt, a) for a in asked))
    async with rt.db() as db:
        resets = (await db.execute(select(PasswordReset))).scalars().all()
    assert len(resets) == 6
    assert len([r for r in resets if r.used_at is None]) == 1
    assert len(await events(stack, "password.reset_requested")) == 6


async def test_reset_ends_every_session_and_the_second_factor_is_still_asked(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await enable_totp(stack.client, token, clock)
    # A remembered device would skip the second factor: the reset forgets it.
    r = await login(stack.client)
    r = await stack.client.post("/api/v1/login/verify", json={
        "login_token": r.json()["login_token"], "method": "totp",
        "code": totp_now(secret, clock), "remember_device": True})
    remembered = r.json()["remember_device_token"]
    other = r.json()["session_token"]
    clock.advance(30)

    link = await reset_link(stack)
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    for t in (token, other):
        problem(await stack.client.get("/api/v1/me", headers=auth(t)), 401,
                "not_authenticated")
    r = await stack.client.post("/api/v1/login", json={
        "email": EMAIL, "password": NEW_PASSWORD, "remember_device_token": remembered})
    assert r.json()["status"] == "second_factor_required"
    r = await verify(stack.client, r.json()["login_token"], "totp", totp_now(secret, clock))
    assert r.json()["status"] == "authenticated"
    # Single use.
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": "another-fine-4-password"})
    problem(r, 400, "invalid_reset_token")
    [event] = await events(stack, "account.password_reset")
    assert event.data["sessions_ended"] == 2
    await notifications.deliver_due(stack.rt)
    assert any("was reset with a link" in text_of(m) for m in stack.mail_to(EMAIL))


async def test_a_link_expires_after_30_minutes_and_a_newer_one_replaces_it(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    await signed_in(stack)
    first = await reset_link(stack)
    second = await reset_link(stack)
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": first, "new_password": NEW_PASSWORD})
    problem(r, 400, "invalid_reset_token")
    clock.advance(30 * 60)
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": second, "new_password": NEW_PASSWORD})
    problem(r, 400, "invalid_reset_token")
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": "x" * 43, "new_password": NEW_PASSWORD})
    body = problem(r, 400, "invalid_reset_token")
    assert "Ask for a new link" in body["detail"]
    assert (await login(stack.client)).status_code == 200  # nothing changed


async def test_a_password_change_spends_an_open_link(start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    link = await reset_link(stack)
    assert await change_password(stack, token) == 204
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": "another-fine-4-password"})
    problem(r, 400, "invalid_reset_token")


async def test_a_weak_new_password_keeps_the_link(start_stack: StartStack) -> None:
    stack = await start_stack()
    await signed_in(stack)
    link = await reset_link(stack)
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": "short"})
    problem(r, 422, "validation_error")
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text


async def test_forgot_password_is_limited_per_email_and_per_network(
        start_stack: StartStack, clock: FrozenClock) -> None:
    stack = await start_stack()
    await signed_in(stack)
    for _ in range(3):
        r = await stack.client.post("/api/v1/password/forgot", json={"email": EMAIL})
        assert r.status_code == 202
    r = await stack.client.post("/api/v1/password/forgot", json={"email": EMAIL})
    problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0
    # An unknown address is limited the same way: the limit tells nothing.
    for _ in range(3):
        await stack.client.post("/api/v1/password/forgot", json={"email": "x@example.com"})
    problem(await stack.client.post("/api/v1/password/forgot",
                                    json={"email": "x@example.com"}), 429, "rate_limited")
    # Per network: 20 an hour, whatever the addresses.
    for i in range(14):
        r = await stack.client.post("/api/v1/password/forgot",
                                    json={"email": f"n{i}@example.com"})
        assert r.status_code == 202, i
    problem(await stack.client.post("/api/v1/password/forgot",
                                    json={"email": "last@example.com"}), 429, "rate_limited")
    clock.advance(3600)
    r = await stack.client.post("/api/v1/password/forgot", json={"email": EMAIL})
    assert r.status_code == 202


async def test_two_racing_submits_of_one_link_only_one_wins(start_stack: StartStack) -> None:
    stack = await start_stack()
    await signed_in(stack)
    link = await reset_link(stack)
    results = await asyncio.gather(
        *(account_security.reset_password(stack.rt, Actor(ip="203.0.113.7"), link, pw)
          for pw in (NEW_PASSWORD, "another-fine-4-password")), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["InvalidResetToken", "bool"]
    assert len(await events(stack, "account.password_reset")) == 1


async def test_a_reset_is_told_to_every_verified_contact(start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    await stack.enable(token, "email", "jane.other@example.org", email="jane.other@example.org")
    link = await reset_link(stack)
    r = await stack.client.post("/api/v1/password/reset", json={
        "token": link, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    await notifications.deliver_due(stack.rt)
    for address in (EMAIL, "jane.other@example.org"):
        assert any("was reset with a link" in text_of(m) for m in stack.mail_to(address)), \
            address
    # The reset link itself went to the account e-mail only.
    assert not any("reset your password" in str(m["Subject"])
                   for m in stack.mail_to("jane.other@example.org"))
