"""Lock-out recovery end to end: the request, the identity checks, four-eyes approval,
the waiting period and the reset — with the injected clock and the notices going out
through a real SMTP server (aiosmtpd). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import func, select

from stepup.domain.errors import (
    CodeAlreadyUsed,
    Conflict,
    Forbidden,
    InvalidCredentials,
    NotAuthenticated,
    RateLimited,
    RecoveryCooldown,
    ValidationFailed,
)
from stepup.services import notifications, recovery, staff
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import (
    AuditEvent,
    BackupCode,
    Method,
    RecoveryRequest,
    RememberedDevice,
    Session,
    User,
)
from tests.api.helpers import (
    EMAIL,
    PIN,
    auth,
    enable_totp,
    login,
    login_token,
    problem,
    session_for,
    sign_up,
    totp_now,
)
from tests.api.oob_support import Stack

CHECKLIST = ["documents_seen", "answers_matched", "call_back_done"]
USER_IP = Actor(ip="198.51.100.23", user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
STAFF_PASSWORD = "staff-correct-horse-42"


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def delivered(stack: Stack) -> list[EmailMessage]:
    """Send what is queued; return the messages that arrived since the last call."""
    before = len(stack.smtp.inbox.messages)
    await notifications.deliver_due(stack.rt)
    return stack.smtp.inbox.messages[before:]


def cancel_link(text: str) -> str:
    m = re.search(r"http://testserver(/recovery/cancel/[0-9a-f]+\.[0-9a-f]+)", text)
    assert m, text
    return m.group(1)


async def locked_out_user(stack: Stack) -> tuple[str, str, str]:
    """A user with TOTP and backup codes, a live session and a remembered device; returns
    (user id, session token, remembered-device token)."""
    c = stack.client
    user = await sign_up(c)
    token = await session_for(c)
    secret = await enable_totp(c, token, stack.clock)
    r = await c.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                     headers=auth(token))
    assert r.status_code == 201, r.text
    lt = await login_token(c)
    r = await c.post("/api/v1/login/verify", json={"login_token": lt, "method": "totp",
                                                   "code": totp_now(secret, stack.clock),
                                                   "remember_device": True})
    assert r.status_code == 200, r.text
    stack.clock.advance(30)
    return str(user["id"]), token, str(r.json()["remember_device_token"])


async def make_staff(rt: Runtime) -> tuple[staff.NewStaff, staff.NewStaff, staff.NewStaff]:
    cli = Actor(name="cli")
    agent = await staff.create(rt, cli, email="agent@example.com", name="Ann Agent",
                               role="support", password=STAFF_PASSWORD)
    sup1 = await staff.create(rt, cli, email="sup1@example.com", name="Sam Supervisor",
                              role="supervisor", password=STAFF_PASSWORD)
    sup2 = await staff.create(rt, cli, email="sup2@example.com", name="Sue Supervisor",
                              role="supervisor", password=STAFF_PASSWORD)
    return agent, sup1, sup2


async def count(rt: Runtime, model: type, user_id: str) -> int:
    async with rt.db() as db:
        q = select(func.count()).select_from(model).where(
            model.user_id == user_id)  # type: ignore[attr-defined]
        return int((await db.execute(q)).scalar_one())


async def events(rt: Runtime, user_id: str) -> list[AuditEvent]:
    async with rt.db() as db:
        q = select(AuditEvent).where(AuditEvent.user_id == user_id).order_by(AuditEvent.id)
        return list((await db.execute(q)).scalars().all())


async def test_full_journey_request_check_approve_wait_reset(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack(recovery_delay_hours=24)
    rt, c, clock = stack.rt, stack.client, stack.clock
    user_id, session_token, device_token = await locked_out_user(stack)
    await delivered(stack)  # notices about enabling methods are not what this test reads
    agent, sup1, sup2 = await make_staff(rt)

    # 1. The request: only with the password proven (an open login token).
    with pytest.raises(NotAuthenticated):
        await recovery.file_request(rt, USER_IP, "not-a-login-token", "I lost my phone.",
                                    {"channel": "email"})
    lt = await login_token(c)
    with pytest.raises(ValidationFailed):
        await recovery.file_request(rt, USER_IP, lt, "help", {"channel": "email"})
    req = await recovery.file_request(rt, USER_IP, lt, "My phone was stolen; no backup codes.",
                                      {"channel": "phone", "phone": "+44 7400 123456",
                                       "best_time": "evenings"})
    assert req.status == "requested"
    with pytest.raises(Conflict):  # one open request per account
        await recovery.file_request(rt, USER_IP, lt, "Second request for the same thing.",
                                    {"channel": "email"})
    [msg] = await delivered(stack)
    assert msg["To"] == EMAIL
    body = text_of(msg)
    assert "A request to reset two-factor authentication" in body
    assert "198.51.100.23" in body
    link = cancel_link(body)
    assert link == "/recovery/cancel/" + recovery.cancel_token(rt, req.id)

    # 2. Identity checks: every item of the checklist, by support.
    who = staff.as_actor(Actor(ip="10.0.0.5"), agent.staff)
    with pytest.raises(ValidationFailed):
        await recovery.record_checks(rt, who, agent.staff, req.id, CHECKLIST[:2])
    with pytest.raises(Conflict):  # not checked yet: nothing to approve
        await recovery.approve(rt, staff.as_actor(Actor(), sup1.staff), sup1.staff, req.id)
    checked = await recovery.record_checks(rt, who, agent.staff, req.id, CHECKLIST,
                                           "Passport over video; called back on file number")
    assert checked.status == "checked" and checked.checked_by == agent.staff.id

    # 3. Approval: support cannot; a supervisor other than the checker can.
    with pytest.raises(Forbidden):
        await recovery.approve(rt, who, agent.staff, req.id)
    approved = await recovery.approve(rt, staff.as_actor(Actor(), sup1.staff), sup1.staff,
                                      req.id, "Checks are complete")
    assert approved.status == "approved" and approved.decided_by == sup1.staff.id
    assert approved.effective_at == clock.now() + timedelta(hours=24)
    [msg] = await delivered(stack)
    body = text_of(msg)
    assert "was approved" in body and cancel_link(body) == link

    # 4. The waiting period: nothing happens before it ends.
    clock.advance(hours=23, minutes=59)
    assert await recovery.complete_due(rt) == 0
    assert await count(rt, Method, user_id) == 2
    assert await count(rt, Session, user_id) >= 1
    assert await count(rt, RememberedDevice, user_id) == 1

    clock.advance(minutes=2)
    assert await recovery.complete_due(rt) == 1
    assert await recovery.complete_due(rt) == 0  # once only
    for model in (Method, BackupCode, Session, RememberedDevice):
        assert await count(rt, model, user_id) == 0, model
    async with rt.db() as db:
        user = await db.get(User, user_id)
        assert user is not None and user.must_enroll
        row = await db.get(RecoveryRequest, req.id)
        assert row is not None and row.status == "completed" and row.completed_at
    problem(await c.get("/api/v1/me", headers=auth(session_token)), 401, "not_authenticated")
    [msg] = await delivered(stack)
    assert "Two-factor authentication on your account was reset" in text_of(msg)

    # The next login: password only, and the remembered device is worth nothing.
    r = await c.post("/api/v1/login", json={"email": EMAIL,
                                            "password": "violet-harbour-7-lanterns",
                                            "remember_device_token": device_token})
    assert r.json()["status"] == "authenticated"
    assert await recovery.needs_enrolment(rt, user_id)

    names = [e.event for e in await events(rt, user_id)]
    for event in ("recovery.requested", "recovery.checked", "recovery.approved",
                  "recovery.completed"):
        assert event in names, names
    trail = {e.event: e for e in await events(rt, user_id)}
    assert trail["recovery.checked"].actor == f"staff:{agent.staff.id}"
    assert trail["recovery.approved"].actor == f"staff:{sup1.staff.id}"
    assert trail["recovery.completed"].data["removed"]["methods"] == 2
    assert sup2  # a third staff member exists but played no part


async def test_self_approval_is_refused(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt = stack.rt
    await locked_out_user(stack)
    _, sup1, sup2 = await make_staff(rt)
    req = await recovery.file_request(rt, USER_IP, await login_token(stack.client),
                                      "Lost my authenticator app.", {"channel": "email"})
    me = staff.as_actor(Actor(), sup1.staff)
    await recovery.record_checks(rt, me, sup1.staff, req.id, CHECKLIST)
    with pytest.raises(Forbidden, match="four eyes"):
        await recovery.approve(rt, me, sup1.staff, req.id)
    assert (await recovery.get(rt, req.id)).status == "checked"
    assert "recovery.self_approval_refused" in [e.event for e in await events(rt, req.user_id)]
    ok = await recovery.approve(rt, staff.as_actor(Actor(), sup2.staff), sup2.staff, req.id)
    assert ok.status == "approved"


async def test_cancel_by_link_during_the_waiting_period(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c, clock = stack.rt, stack.client, stack.clock
    user_id, _, _ = await locked_out_user(stack)
    await delivered(stack)
    agent, sup1, _ = await make_staff(rt)
    req = await recovery.file_request(rt, USER_IP, await login_token(c),
                                      "Lost my authenticator app.", {"channel": "email"})
    link = cancel_link(text_of((await delivered(stack))[0]))
    await recovery.record_checks(rt, Actor(), agent.staff, req.id, CHECKLIST)
    await recovery.approve(rt, Actor(), sup1.staff, req.id)
    await delivered(stack)

    # GET shows a confirmation and changes nothing (mail scanners follow links).
    r = await c.get(link)
    assert r.status_code == 200 and "Cancel the request" in r.text
    assert "j***@example.com" in r.text
    assert (await recovery.get(rt, req.id)).status == "approved"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert csrf
    # Without the CSRF token: refused.
    r = await c.post(link, data={})
    assert r.status_code == 403
    r = await c.post(link, data={"csrf_token": csrf.group(1)})
    assert r.status_code == 200 and "Recovery request cancelled" in r.text
    row = await recovery.get(rt, req.id)
    assert row.status == "cancelled" and row.cancelled_by == "link"
    [msg] = await delivered(stack)
    assert "was cancelled" in text_of(msg)

    # Single use: the same link now says so, and changes nothing.
    r = await c.post(link, data={"csrf_token": csrf.group(1)})
    assert r.status_code == 409 and "no longer open" in r.text
    assert await delivered(stack) == []
    # A forged token: a clear page, nothing else.
    forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    r = await c.get(forged)
    assert r.status_code == 404 and "This link is not valid" in r.text
    r = await c.get("/recovery/cancel/nonsense")
    assert r.status_code == 404

    # The waiting period ends: nothing is reset.
    clock.advance(hours=25)
    assert await recovery.complete_due(rt) == 0
    assert await count(rt, Method, user_id) == 2
    with pytest.raises(Conflict):
        await recovery.reject(rt, Actor(), sup1.staff, req.id, "too late")


async def test_reject_notifies_and_allows_a_new_request(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c = stack.rt, stack.client
    await locked_out_user(stack)
    await delivered(stack)
    agent, _, _ = await make_staff(rt)
    req = await recovery.file_request(rt, USER_IP, await login_token(c),
                                      "Lost my authenticator app.", {"channel": "email"})
    await delivered(stack)
    with pytest.raises(ValidationFailed):
        await recovery.reject(rt, Actor(), agent.staff, req.id, "")
    rejected = await recovery.reject(rt, Actor(), agent.staff, req.id,
                                     "Caller could not answer the account questions")
    assert rejected.status == "rejected"
    [msg] = await delivered(stack)
    assert "was rejected" in text_of(msg)
    with pytest.raises(RecoveryCooldown):  # a day to wait first (test_recovery_cooldown.py)
        await recovery.file_request(rt, USER_IP, await login_token(c),
                                    "Trying again with my passport.", {"channel": "email"})
    stack.clock.advance(hours=24)
    again = await recovery.file_request(rt, USER_IP, await login_token(c),
                                        "Trying again with my passport.", {"channel": "email"})
    assert again.status == "requested"


async def test_staff_totp_steps_are_single_use_and_guessing_locks(start_stack) -> None:  # type: ignore[no-untyped-def]
    # Staff log in through the users' login flow: the same single use of a time step,
    # the same password throttle (STEPUP_PASSWORD_FAILURES_PER_ADDRESS).
    stack: Stack = await start_stack()
    rt, clock = stack.rt, stack.clock
    agent, _, _ = await make_staff(rt)
    token = (await staff.password_step(rt, Actor(), agent.staff.email, STAFF_PASSWORD)
             ).login_token
    assert token is not None
    with pytest.raises(NotAuthenticated):  # a login waiting for its second factor
        await staff.resolve(rt, token)
    code = totp_now(agent.secret, clock)
    full = await staff.second_factor(rt, Actor(), token, "totp", code)
    assert (await staff.resolve(rt, full)).staff.id == agent.staff.id
    with pytest.raises(NotAuthenticated):  # the login flow is spent
        await staff.second_factor(rt, Actor(), token, "totp", code)
    # The same code (same time step) cannot log in a second session.
    token2 = (await staff.password_step(rt, Actor(), agent.staff.email, STAFF_PASSWORD)
              ).login_token
    assert token2 is not None
    with pytest.raises(CodeAlreadyUsed):
        await staff.second_factor(rt, Actor(), token2, "totp", code)
    # Wrong passwords: ten from one network, then even the right one is refused for a
    # while.
    for _ in range(rt.settings.password_failures_per_address):
        with pytest.raises(InvalidCredentials):
            await staff.password_step(rt, Actor(), agent.staff.email, "wrong-password-123")
    with pytest.raises(RateLimited):
        await staff.password_step(rt, Actor(), agent.staff.email, STAFF_PASSWORD)
    await staff.disable(rt, Actor(name="cli"), agent.staff.email)
    with pytest.raises(NotAuthenticated):
        await staff.resolve(rt, full)


async def test_request_needs_a_live_login_token(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c, clock = stack.rt, stack.client, stack.clock
    await locked_out_user(stack)
    lt = await login_token(c)
    clock.advance(minutes=6)
    with pytest.raises(NotAuthenticated):
        await recovery.file_request(rt, USER_IP, lt, "Lost my authenticator app.",
                                    {"channel": "email"})
    r = await login(c, EMAIL, "wrong-password-000")
    assert r.status_code == 401


async def test_operations_wait_for_a_method_after_a_reset(client: httpx.AsyncClient,
                                                         runtime: Runtime) -> None:
    from sqlalchemy import update

    from stepup.store.models import User
    from tests.api.helpers import PIN, auth, session_for, sign_up

    body = await sign_up(client)
    token = await session_for(client)
    async with runtime.db() as db:
        await db.execute(update(User).where(User.id == body["id"]).values(must_enroll=True))
        await db.commit()
    r = await client.post("/api/v1/me/operations", headers=auth(token), json={
        "type": "withdrawal", "details": {"amount": "1", "currency": "USD",
                                          "destination": "acct-1"}})
    assert r.status_code == 409 and "reset" in r.json()["detail"]
    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                          headers=auth(token))
    assert r.status_code == 201
    r = await client.post("/api/v1/me/operations", headers=auth(token), json={
        "type": "withdrawal", "details": {"amount": "1", "currency": "USD",
                                          "destination": "acct-1"}})
    assert r.status_code == 201, r.text
