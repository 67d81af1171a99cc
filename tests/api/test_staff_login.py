"""Staff sign in through the users' machinery (a user of the hidden app ``staff``): any
method protecting their login completes it (a passkey too), wrong codes lock by the
users' rules, and the staff users are nobody to StepUp's pages or any app's key."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import InvalidCode, MethodLocked, NotAuthenticated, NotFound
from stepup.services import apikeys, methods, staff, support
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import STAFF_APP_ID
from tests.api.helpers import auth, login, problem, totp_now, wrong_totp
from tests.support.passkey import SoftPasskey

STAFF_PASSWORD = "staff-correct-horse-42"
CLI = Actor(name="cli")


async def make_agent(rt: Runtime) -> staff.NewStaff:
    return await staff.create(rt, CLI, email="agent@example.com", name="Ann Agent",
                              role="support", password=STAFF_PASSWORD)


async def add_passkey(rt: Runtime, user_id: str, key: SoftPasskey) -> None:
    """A passkey through the methods machinery, switched on for login."""
    start = await methods.begin_enrollment(rt, CLI, user_id, "webauthn", None, {},
                                           on_behalf=True)
    await methods.confirm_enrollment(rt, CLI, user_id, "webauthn",
                                     key.create(start.body.page_context()["options"]))
    sent = await methods.challenge(rt, CLI, user_id, "webauthn")
    assert sent.options is not None
    await methods.switch(rt, CLI, user_id, "webauthn", {"login": True},
                         key.get(sent.options))


async def flow(rt: Runtime, who: staff.NewStaff) -> str:
    token = (await staff.password_step(rt, Actor(), who.staff.email, STAFF_PASSWORD)
             ).login_token
    assert token is not None
    return token


async def _vacuum_methods(rt: Runtime) -> None:
    """On PostgreSQL, free the dead tuples' slots so the next insert reuses one."""
    if rt.engine.dialect.name == "postgresql":
        async with rt.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM methods"))


async def test_the_oldest_method_is_offered_first_wherever_its_row_lies(
        runtime: Runtime, clock: FrozenClock) -> None:
    """The app and the passkey are enrolled in the same (frozen) instant, and the
    passkey's row lands in a slot before the app's (on PostgreSQL a freed slot is
    reused: here one left by another user's method). The login step still offers the
    app, the older, first: ordered by enrolment time alone, the tie went to whichever
    row the table held first, and the default method changed between test runs."""
    rt = runtime
    filler = await make_agent(rt)  # a method row ahead of the agent's
    agent = await staff.create(rt, CLI, email="second@example.com", name="Bo Agent",
                               role="support", password=STAFF_PASSWORD)
    async with rt.engine.begin() as conn:
        await conn.execute(text("DELETE FROM methods WHERE user_id = :u"),
                           {"u": filler.staff.user_id})
    await _vacuum_methods(rt)
    await add_passkey(rt, agent.staff.user_id, SoftPasskey())
    for _ in range(2):
        token = await flow(rt, agent)
        assert [m["type"] for m in await staff.flow_methods(rt, token)] == ["totp", "webauthn"]
        await staff.second_factor(rt, Actor(), token, "totp", totp_now(agent.secret, clock))
        clock.advance(seconds=30)


async def test_a_staff_member_logs_in_with_a_passkey(runtime: Runtime) -> None:
    rt = runtime
    agent = await make_agent(rt)
    key = SoftPasskey()
    await add_passkey(rt, agent.staff.user_id, key)
    token = await flow(rt, agent)
    assert {m["type"] for m in await staff.flow_methods(rt, token)} == {"totp", "webauthn"}
    sent = await staff.challenge(rt, Actor(), token, "webauthn")
    assert sent.options is not None
    session = await staff.second_factor(rt, Actor(), token, "webauthn", key.get(sent.options))
    auth_ = await staff.resolve(rt, session)
    assert auth_.staff.id == agent.staff.id and auth_.user.app_id == STAFF_APP_ID


async def test_wrong_codes_lock_the_staff_method_by_the_users_rules(runtime: Runtime,
                                                                   clock: FrozenClock) -> None:
    rt = runtime
    agent = await make_agent(rt)
    token = await flow(rt, agent)
    wrong = wrong_totp(agent.secret, clock)
    for _ in range(rt.settings.method_lock_after - 1):
        with pytest.raises(InvalidCode):
            await staff.second_factor(rt, Actor(), token, "totp", wrong)
    with pytest.raises(MethodLocked) as locked:  # the lock the users' rule sets
        await staff.second_factor(rt, Actor(), token, "totp", wrong)
    assert locked.value.retry_after == rt.settings.method_lock_first_seconds
    with pytest.raises(MethodLocked):  # even the right code, while it lasts
        await staff.second_factor(rt, Actor(), token, "totp",
                                  totp_now(agent.secret, rt.clock))  # type: ignore[arg-type]
    # Lifted as any user's lock (stepup user unlock --app staff).
    assert "method:totp" in await support.unlock(rt, CLI, agent.staff.email, app=STAFF_APP_ID)
    session = await staff.second_factor(rt, Actor(), token, "totp",
                                        totp_now(agent.secret, rt.clock))  # type: ignore[arg-type]
    assert (await staff.resolve(rt, session)).staff.id == agent.staff.id


async def test_app_keys_and_the_portal_never_see_staff_users(client: httpx.AsyncClient,
                                                              runtime: Runtime) -> None:
    rt = runtime
    agent = await make_agent(rt)
    uid = agent.staff.user_id
    _, key = await apikeys.create(rt, "acme", "app", CLI, scopes=list(apikeys.SCOPES))
    h = auth(key)
    for r in (await client.get(f"/api/v1/users/{uid}", headers=h),
              await client.get(f"/api/v1/users/{uid}/methods", headers=h),
              await client.get(f"/api/v1/users/{uid}/events", headers=h),
              await client.post(f"/api/v1/users/{uid}/challenge", headers=h,
                                json={"method": "totp", "purpose": "login"}),
              await client.post(f"/api/v1/users/{uid}/verify", headers=h,
                                json={"method": "totp", "code": "123456",
                                      "purpose": "login"}),
              await client.post(f"/api/v1/users/{uid}/unlock", headers=h, json={})):
        problem(r, 404, "not_found")
    r = await client.get("/api/v1/users", params={"email": agent.staff.email}, headers=h)
    assert r.status_code == 200 and r.json()["users"] == [], r.text
    # No key is ever made for the staff's app, nor is it listed.
    with pytest.raises(NotFound):
        await apikeys.create(rt, "sneaky", "app", CLI, app=STAFF_APP_ID)
    # The staff e-mail and password log in to nothing but the console.
    problem(await login(client, agent.staff.email, STAFF_PASSWORD), 401,
            "invalid_credentials")


async def test_a_console_session_is_no_api_session(client: httpx.AsyncClient,
                                                   runtime: Runtime,
                                                   clock: FrozenClock) -> None:
    rt = runtime
    agent = await make_agent(rt)
    session = await staff.second_factor(rt, Actor(), await flow(rt, agent), "totp",
                                        totp_now(agent.secret, rt.clock))  # type: ignore[arg-type]
    problem(await client.get("/api/v1/me/methods", headers=auth(session)), 401,
            "not_authenticated")
    assert (await staff.resolve(rt, session)).staff.id == agent.staff.id  # still alive
    await staff.disable(rt, CLI, agent.staff.email)
    with pytest.raises(NotAuthenticated):
        await staff.resolve(rt, session)


async def test_a_console_session_lasts_the_staff_lifetimes(runtime: Runtime,
                                                          clock: FrozenClock) -> None:
    rt = runtime
    agent = await make_agent(rt)

    async def log_in() -> str:
        return await staff.second_factor(rt, Actor(), await flow(rt, agent), "totp",
                                         totp_now(agent.secret, clock))

    session = await log_in()
    used_for = 0
    while used_for + 20 < rt.settings.staff_session_hours * 60:  # in use all along
        clock.advance(minutes=20)
        used_for += 20
        await staff.resolve(rt, session)
    clock.advance(minutes=20)  # STAFF_SESSION_HOURS after it began, not the users' 12
    with pytest.raises(NotAuthenticated):
        await staff.resolve(rt, session)
    session = await log_in()
    clock.advance(minutes=rt.settings.staff_session_idle_minutes)
    with pytest.raises(NotAuthenticated):
        await staff.resolve(rt, session)
