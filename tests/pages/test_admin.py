"""The support console through its forms: staff login with a second factor (the
authenticator app or a passkey), search, an account's security state, unlocking, and the
recovery queue with four eyes."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import RateLimited
from stepup.services import recovery, staff, support
from stepup.services.runtime import Actor, Runtime
from stepup.store import audit as audit_store
from stepup.store.models import Method
from tests.api.test_staff_login import add_passkey
from tests.pages.helpers import (
    EMAIL,
    check,
    enable_totp,
    get,
    log_in,
    log_out,
    redirected_to,
    sign_up,
    submit,
    totp_now,
)
from tests.pages.test_oob import E164, MASKED, enable_sms
from tests.pages.test_passkeys import options_from
from tests.support import instances
from tests.support.passkey import SoftPasskey

STAFF_PASSWORD = "staff-correct-horse-42"
Clients = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def new_client(runtime: Runtime) -> AsyncIterator[Clients]:
    """More browsers on the same app: the user, the agent and the supervisors."""
    opened: list[httpx.AsyncClient] = []
    async with instances.workers(runtime, client=("10.0.0.9", 5)) as transport:
        def make() -> httpx.AsyncClient:
            c = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            opened.append(c)
            return c

        yield make
        for c in opened:
            await c.aclose()


async def create_staff(rt: Runtime, email: str, role: str) -> staff.NewStaff:
    return await staff.create(rt, Actor(name="cli"), email=email, name=email.split("@")[0],
                              role=role, password=STAFF_PASSWORD)


async def staff_log_in(client: httpx.AsyncClient, who: staff.NewStaff,
                       clock: FrozenClock) -> None:
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=who.staff.email,
                     password=STAFF_PASSWORD)
    redirected_to(r, "/admin/second-factor")
    html = await get(client, "/admin/second-factor")
    r = await submit(client, html, "/admin/second-factor", code=totp_now(who.secret, clock))
    redirected_to(r, "/admin")
    clock.advance(30)  # the next staff login needs a fresh time step


async def test_staff_without_second_factor_reach_nothing(client: httpx.AsyncClient,
                                                         runtime: Runtime,
                                                         clock: FrozenClock) -> None:
    agent = await create_staff(runtime, "agent@example.com", "support")
    r = await client.get("/admin")
    redirected_to(r, "/admin/login")
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=agent.staff.email,
                     password="not-the-password-1")
    assert "not correct" in check(r, 400)
    r = await submit(client, html, "/admin/login", email=agent.staff.email,
                     password=STAFF_PASSWORD)
    redirected_to(r, "/admin/second-factor")
    half = await get(client, "/admin/second-factor")
    # Password only: every console page and form sends back to the second factor.
    for url in ("/admin", "/admin?q=jane", "/admin/users/abc", "/admin/recovery/abc"):
        redirected_to(await client.get(url), "/admin/second-factor")
    csrf = [f for f in half.split('"') if len(f) == 64]
    for action in ("/admin/users/abc/unlock", "/admin/recovery/abc/approve"):
        r = await client.post(action, data={"csrf_token": csrf[0], "what": "all"})
        redirected_to(r, "/admin/second-factor")
    r = await submit(client, half, "/admin/second-factor", code="000000")
    assert "not valid" in check(r, 400)
    r = await submit(client, half, "/admin/second-factor",
                     code=totp_now(agent.secret, clock))
    redirected_to(r, "/admin")
    html = await get(client, "/admin")
    assert "Find an account" in html and "agent" in html


async def test_staff_account_without_authenticator_is_refused(client: httpx.AsyncClient,
                                                              runtime: Runtime) -> None:
    # A staff login always needs a second factor: with no method protecting login, the
    # right password is refused at once (a user's would let them in).
    agent = await create_staff(runtime, "agent@example.com", "support")
    async with runtime.db() as db:
        await db.execute(delete(Method).where(Method.user_id == agent.staff.user_id))
        await db.commit()
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=agent.staff.email,
                     password=STAFF_PASSWORD)
    assert "no authenticator app or passkey" in check(r, 403)
    redirected_to(await client.get("/admin"), "/admin/login")
    redirected_to(await client.get("/admin/second-factor"), "/admin/login")


async def test_console_journey_with_four_eyes(client: httpx.AsyncClient, runtime: Runtime,
                                              clock: FrozenClock,
                                              new_client: Clients) -> None:
    rt = runtime
    user = client
    await sign_up(user)
    secret = await enable_totp(user, clock)
    await log_out(user)
    # Five wrong codes lock the authenticator app: support will lift it.
    redirected_to(await log_in(user), "/login/second-factor")
    html = await get(user, "/login/second-factor")
    for _ in range(5):
        r = await submit(user, html, "/login/second-factor", code="000000")
    assert r.status_code == 423
    html = await get(user, "/login/second-factor")
    assert "Can&#39;t use any of your methods?" in html or \
        "Can't use any of your methods?" in html
    html = await get(user, "/login/recovery")
    r = await submit(user, html, "/login/recovery",
                     description="My phone is gone and so are my codes.", channel="email")
    redirected_to(r, "/login/recovery?filed=1")
    assert "Support has your request" in await get(user, "/login/recovery?filed=1")

    agent_page = new_client()
    agent = await create_staff(rt, "agent@example.com", "support")
    sup1 = await create_staff(rt, "sup1@example.com", "supervisor")
    await staff_log_in(agent_page, agent, clock)

    # Search, then the account: methods (no secret), grade, locks, audit events.
    html = await get(agent_page, "/admin?q=jane@")
    assert EMAIL in html
    user_id = html.split('href="/admin/users/')[1].split('"')[0]
    html = await get(agent_page, f"/admin/users/{user_id}")
    assert "Authenticator app" in html and "Grade 0" in html
    assert secret not in html and "code.failed" in html and "recovery.requested" in html
    assert "Nothing is locked." not in html
    r = await submit(agent_page, html, f"/admin/users/{user_id}/unlock")
    redirected_to(r, f"/admin/users/{user_id}?unlocked=1")
    html = await get(agent_page, f"/admin/users/{user_id}?unlocked=1")
    assert "The lock was lifted." in html and "Nothing is locked." in html
    # The audit row names the staff member, not their id.
    assert "account.unlocked" in html and "agent (agent@example.com)" in html
    assert f"staff:{agent.staff.id}" not in html
    assert "Show number" not in html  # no verified phone: no number on file to show

    # The queue; the checks; support cannot approve.
    html = await get(agent_page, "/admin")
    request_id = html.split('href="/admin/recovery/')[1].split('"')[0]
    html = await get(agent_page, f"/admin/recovery/{request_id}")
    assert "My phone is gone" in html and "Identity documents seen" in html
    r = await submit(agent_page, html, f"/admin/recovery/{request_id}/check",
                     check_documents_seen="1")
    assert "Every identity check must be done" in check(r, 422)
    r = await submit(agent_page, html, f"/admin/recovery/{request_id}/check",
                     check_documents_seen="1", check_answers_matched="1",
                     check_call_back_done="1", note="Passport on video call")
    redirected_to(r, f"/admin/recovery/{request_id}?done=checked")
    html = await get(agent_page, f"/admin/recovery/{request_id}?done=checked")
    assert "/approve" not in html
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    r = await agent_page.post(f"/admin/recovery/{request_id}/approve",
                              data={"csrf_token": csrf})
    assert "Only a supervisor" in check(r, 403)

    sup_page = new_client()
    await staff_log_in(sup_page, sup1, clock)
    html = await get(sup_page, f"/admin/recovery/{request_id}")
    r = await sup_page.post(f"/admin/recovery/{request_id}/approve",
                            data={"note": "ok"})  # no CSRF token
    assert r.status_code == 403
    assert (await recovery.get(rt, request_id)).status == "checked"
    r = await submit(sup_page, html, f"/admin/recovery/{request_id}/approve", note="ok")
    redirected_to(r, f"/admin/recovery/{request_id}?done=approved")
    html = await get(sup_page, f"/admin/recovery/{request_id}?done=approved")
    assert "Approved, in the waiting period" in html

    # The waiting period ends; the next login lands on the methods page, enrol first.
    clock.advance(hours=25)
    assert await recovery.complete_due(rt) == 1
    r = await log_in(user)
    redirected_to(r, "/settings/methods")
    html = await get(user, "/settings/methods")
    assert 'id="must-enroll"' in html
    redirected_to(await user.get("/operations/new"), "/settings/methods")
    await enable_totp(user, clock)
    html = await get(user, "/settings/methods")
    assert 'id="must-enroll"' not in html


async def test_supervisor_who_checked_cannot_approve(client: httpx.AsyncClient,
                                                     runtime: Runtime,
                                                     clock: FrozenClock) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    await log_out(client)
    await log_in(client)
    html = await get(client, "/login/recovery")
    r = await submit(client, html, "/login/recovery",
                     description="Lost the phone with the app on it.", channel="email")
    redirected_to(r, "/login/recovery?filed=1")
    sup = await create_staff(runtime, "sup1@example.com", "supervisor")
    page = client  # the same browser may hold a staff cookie beside the user's
    await staff_log_in(page, sup, clock)
    html = await get(page, "/admin")
    request_id = html.split('href="/admin/recovery/')[1].split('"')[0]
    html = await get(page, f"/admin/recovery/{request_id}")
    r = await submit(page, html, f"/admin/recovery/{request_id}/check",
                     check_documents_seen="1", check_answers_matched="1",
                     check_call_back_done="1")
    redirected_to(r, f"/admin/recovery/{request_id}?done=checked")
    html = await get(page, f"/admin/recovery/{request_id}")
    assert "another supervisor must approve it" in html and "/approve" not in html
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    r = await page.post(f"/admin/recovery/{request_id}/approve", data={"csrf_token": csrf})
    assert "four eyes" in check(r, 403)
    assert (await recovery.get(runtime, request_id)).status == "checked"


async def test_staff_log_in_with_a_passkey_on_the_console(client: httpx.AsyncClient,
                                                          runtime: Runtime) -> None:
    agent = await create_staff(runtime, "agent@example.com", "support")
    key = SoftPasskey()
    await add_passkey(runtime, agent.staff.user_id, key)
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=agent.staff.email,
                     password=STAFF_PASSWORD)
    redirected_to(r, "/admin/second-factor")
    html = await get(client, "/admin/second-factor")
    assert "/admin/second-factor?method=webauthn" in html  # offered beside the app
    html = await get(client, "/admin/second-factor?method=webauthn")
    r = await submit(client, html, "/admin/second-factor", code=key.get(options_from(html)))
    redirected_to(r, "/admin")
    assert "Find an account" in await get(client, "/admin")


async def test_portal_and_console_cookies_never_cross(client: httpx.AsyncClient,
                                                      runtime: Runtime, clock: FrozenClock,
                                                      new_client: Clients) -> None:
    await sign_up(client)  # a portal session in this browser
    portal = client.cookies.get("stepup_session")
    agent = await create_staff(runtime, "agent@example.com", "support")
    console = new_client()
    await staff_log_in(console, agent, clock)
    staff_cookie = console.cookies.get("stepup_staff")
    assert portal and staff_cookie
    # The console's cookie as the portal's: no one is signed in to the portal.
    other = new_client()
    other.cookies.set("stepup_session", staff_cookie)
    redirected_to(await other.get("/settings/methods"), "/login")
    # The portal's cookie as the console's: the console asks for a staff login.
    other = new_client()
    other.cookies.set("stepup_staff", portal)
    redirected_to(await other.get("/admin"), "/admin/login")
    # Each still opens its own.
    assert "Find an account" in await get(console, "/admin")
    check(await client.get("/settings/methods"), 200)


async def _file_request(user: httpx.AsyncClient, **contact: str) -> None:
    redirected_to(await log_in(user), "/login/second-factor")
    html = await get(user, "/login/recovery")
    r = await submit(user, html, "/login/recovery",
                     description="Lost my phone on the train yesterday.", **contact)
    redirected_to(r, "/login/recovery?filed=1")


async def test_support_sees_the_number_on_file_when_asking_and_it_is_audited(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        new_client: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    await sign_up(client)
    await enable_sms(client, runtime)  # the verified phone: the number on file
    await log_out(client)
    # Whoever files the request gives a number of their choosing: not the one on file.
    await _file_request(client, channel="phone", phone="+44 7400 123456")
    agent = await create_staff(runtime, "agent@example.com", "support")
    page = new_client()
    await staff_log_in(page, agent, clock)
    html = await get(page, "/admin")
    request_id = html.split('href="/admin/recovery/')[1].split('"')[0]
    user_id = (await recovery.get(runtime, request_id)).user_id

    html = await get(page, f"/admin/recovery/{request_id}")
    assert MASKED in html and E164 not in html and "+7 912 345-45-67" not in html
    assert "not the one on file" in html and 'href="#phone-on-file"' in html
    action = f"/admin/recovery/{request_id}/phone"
    r = await page.post(action, data={})  # no CSRF token: nothing shown, nothing audited
    assert r.status_code == 403 and E164 not in r.text
    shown = check(await submit(page, html, action))
    assert 'href="tel:+79123454567"' in shown and "+7 912 345-45-67" in shown
    assert "Show number" not in shown

    async with runtime.db() as db:
        events = [e for e in await audit_store.search(db, user_id=user_id)
                  if e.event == "support.phone_viewed"]
    assert len(events) == 1 and events[0].actor == f"staff:{agent.staff.id}"
    assert events[0].data == {"staff": agent.staff.id, "found": True, "request": request_id}
    assert E164 not in str(events[0].data)  # the number itself is never logged

    # The account page: a reload shows the number no more; its audit row names who looked.
    html = await get(page, f"/admin/users/{user_id}")
    assert E164 not in html and "Show number" in html
    assert "support.phone_viewed" in html and "agent (agent@example.com)" in html
    shown = check(await submit(page, html, f"/admin/users/{user_id}/phone"))
    assert 'href="tel:+79123454567"' in shown

    # Looking numbers up is limited per staff member and hour.
    monkeypatch.setattr(support, "PHONE_LOOKUPS_PER_HOUR", 3)
    check(await submit(page, html, f"/admin/users/{user_id}/phone"))
    r = await submit(page, html, f"/admin/users/{user_id}/phone")
    assert "Too many phone numbers looked up" in check(r, 429) and E164 not in r.text
    # Its Retry-After: the whole seconds to the next hour, rounded up, never short of it.
    clock.advance(seconds=0.25)
    with pytest.raises(RateLimited) as limited:
        await support.phone_on_file(runtime, Actor(), agent.staff, user_id)
    now = clock.now()
    left = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - now)
    assert limited.value.retry_after == math.ceil(left.total_seconds())
    for _ in range(3):  # the next hour, the console in use meanwhile (idle sessions end)
        clock.advance(minutes=25)
        html = await get(page, f"/admin/users/{user_id}")
    assert 'href="tel:+79123454567"' in check(
        await submit(page, html, f"/admin/users/{user_id}/phone"))
    # An unknown account, or a staff member's own user: not support's case, neither its
    # page nor its number.
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    for other in ("nobody", agent.staff.user_id):
        assert "There is no such page." in check(await page.get(f"/admin/users/{other}"), 404)
        r = await page.post(f"/admin/users/{other}/phone", data={"csrf_token": csrf})
        assert r.status_code == 404


async def test_the_cancel_page_does_not_assume_the_reader_asked(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        new_client: Clients) -> None:
    await sign_up(client)
    await enable_totp(client, clock)
    await log_out(client)
    await _file_request(client, channel="email")
    [row] = await recovery.queue(runtime)
    link = "/recovery/cancel/" + recovery.cancel_token(runtime, row[0].id)
    reader = new_client()  # whoever got the notice: maybe not the one who asked
    html = await get(reader, link)
    assert "Someone asked to reset two-factor authentication" in html
    assert "Support has not checked the identity of the person who asked yet." in html
    assert "If you did not ask for this, cancel it" in html
    assert "If you asked for it yourself" in html
    assert "your request" not in html.lower() and "Support has your request" not in html
    ru = await get(new_client(), link + "?lang=ru")
    assert "Поддержка ещё не проверила личность того, кто подал заявку." in ru
    assert "Если заявку подали вы сами" in ru and "Support" not in ru
    r = await submit(reader, html, link)
    done = check(r)
    assert "Recovery request cancelled" in done and "change it" in done
    html = await get(reader, link)
    assert "no longer open" in html and "This request was cancelled: nothing was reset." in html
    assert "your request" not in html.lower()


async def test_the_console_second_factor_is_the_portal_page_without_its_extras(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    agent = await create_staff(runtime, "agent@example.com", "support")
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=agent.staff.email,
                     password=STAFF_PASSWORD)
    html = await get(client, redirected_to(r, "/admin/second-factor"))
    assert 'action="/admin/second-factor"' in html and 'action="/admin/logout"' in html
    assert "/login/" not in html and "remember_device" not in html
    assert "Support console" in html  # the console's header, not the portal's
