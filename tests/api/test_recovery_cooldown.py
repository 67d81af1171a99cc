"""Recovery spam (issue 14, item 8): each filing tells every contact, so whoever knows the
password must not re-file at will. One open request at a time, and after a request is
cancelled or rejected a new one waits ``RECOVERY_COOLDOWN_HOURS`` (24): 429
``recovery_cooldown``, retryable, with ``retry_after``; a refusal tells no one. A
completed request starts no wait. Both ways a request is filed: StepUp's own pages
(the password proven by a login token) and a portal through the integration API.
Runs on SQLite and on PostgreSQL, over several workers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import RateLimited, RecoveryCooldown
from stepup.services import recovery, staff
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent
from tests.api.helpers import enable_totp as api_enable_totp
from tests.api.helpers import login_token, problem
from tests.api.oob_support import Stack
from tests.api.test_recovery import (
    CHECKLIST,
    USER_IP,
    cancel_link,
    delivered,
    events,
    locked_out_user,
    make_staff,
    text_of,
)
from tests.api.test_recovery_api import (
    EMAIL,
    OTHER_EMAIL,
    PHONE,
    Portal,
    audit_of,
    file,
    portal_user,
    recovery_notices,
    state,
)
from tests.api.test_recovery_api import acme as acme  # the fixture
from tests.pages.helpers import (
    check,
    enable_backup_codes,
    enable_totp,
    form,
    get,
    log_in,
    log_out,
    redirected_to,
    sign_up,
    submit,
)

DAY = 24 * 3600
WHAT = "Lost my authenticator app; no backup codes."


async def cancel_by_link(client: httpx.AsyncClient, link: str) -> None:
    html = await get(client, link)
    r = await submit(client, html, link)
    assert "Recovery request cancelled" in check(r)


async def refused(rt: Runtime, client: httpx.AsyncClient) -> RecoveryCooldown:
    with pytest.raises(RecoveryCooldown) as got:
        await recovery.file_request(rt, USER_IP, await login_token(client), WHAT,
                                    {"channel": "email"})
    assert isinstance(got.value, RateLimited) and got.value.retryable
    return got.value


async def audit_events(rt: Runtime, event: str) -> list[AuditEvent]:
    async with rt.db() as db:
        q = select(AuditEvent).where(AuditEvent.event == event)
        return list((await db.execute(q)).scalars().all())


async def requested(rt: Runtime, user_id: str) -> int:
    return sum(e.event == "recovery.requested" for e in await events(rt, user_id))


# --- StepUp's own pages (the password proven by a login token) ------------------------


async def test_a_cancelled_request_makes_the_next_one_wait(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c, clock = stack.rt, stack.client, stack.clock
    user_id, _, _ = await locked_out_user(stack)
    await delivered(stack)
    await recovery.file_request(rt, USER_IP, await login_token(c), WHAT, {"channel": "email"})
    await cancel_by_link(c, cancel_link(text_of((await delivered(stack))[0])))
    assert [m["Subject"] for m in await delivered(stack)]  # "was cancelled"

    err = await refused(rt, c)
    assert err.code == "recovery_cooldown" and err.retry_after == DAY
    assert "24 hours" in err.detail
    assert await delivered(stack) == []  # the refusal tells no one
    assert await requested(rt, user_id) == 1

    clock.advance(hours=23, minutes=59, seconds=30)
    assert (await refused(rt, c)).retry_after == 30
    assert await delivered(stack) == []
    clock.advance(seconds=30)
    again = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                        {"channel": "email"})
    assert again.status == "requested"
    [msg] = await delivered(stack)
    assert "A request to reset two-factor authentication" in text_of(msg)
    assert await requested(rt, user_id) == 2


async def test_a_rejected_request_makes_the_next_one_wait(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c, clock = stack.rt, stack.client, stack.clock
    user_id, _, _ = await locked_out_user(stack)
    await delivered(stack)
    agent, _, _ = await make_staff(rt)
    req = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                      {"channel": "email"})
    await delivered(stack)
    clock.advance(hours=2)  # the wait runs from the rejection, not from the filing
    await recovery.reject(rt, Actor(), agent.staff, req.id, "Could not answer the questions")
    await delivered(stack)

    assert (await refused(rt, c)).retry_after == DAY
    clock.advance(hours=23)
    assert (await refused(rt, c)).retry_after == 3600
    assert await delivered(stack) == [] and await requested(rt, user_id) == 1
    clock.advance(hours=1)
    again = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                        {"channel": "email"})
    assert again.status == "requested" and len(await delivered(stack)) == 1


async def test_a_completed_request_starts_no_wait(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack()
    rt, c, clock = stack.rt, stack.client, stack.clock
    user_id, _, _ = await locked_out_user(stack)
    await delivered(stack)
    agent, sup1, _ = await make_staff(rt)
    req = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                      {"channel": "email"})
    await recovery.record_checks(rt, Actor(), agent.staff, req.id, CHECKLIST)
    await recovery.approve(rt, staff.as_actor(Actor(), sup1.staff), sup1.staff, req.id)
    clock.advance(hours=rt.settings.recovery_delay_hours, seconds=1)
    assert await recovery.complete_due(rt) == 1
    # The reset happened; locked out again (a new method, lost again), the user may ask
    # at once. The request went through four eyes and the waiting period: no spam.
    r = await c.post("/api/v1/login", json={"email": "jane@example.com",
                                            "password": "violet-harbour-7-lanterns"})
    await api_enable_totp(c, r.json()["session_token"], clock)
    again = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                        {"channel": "email"})
    assert again.status == "requested"
    assert await requested(rt, user_id) == 2


async def test_the_wait_is_a_setting(start_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await start_stack(recovery_cooldown_hours=0)
    rt, c = stack.rt, stack.client
    await locked_out_user(stack)
    await delivered(stack)
    await recovery.file_request(rt, USER_IP, await login_token(c), WHAT, {"channel": "email"})
    await cancel_by_link(c, cancel_link(text_of((await delivered(stack))[0])))
    again = await recovery.file_request(rt, USER_IP, await login_token(c), WHAT,
                                        {"channel": "email"})
    assert again.status == "requested"


# --- the hosted page says how long to wait, in the user's language ----------------------


async def _file_and_cancel_on_the_page(client: httpx.AsyncClient, clock: FrozenClock,
                                       language: str) -> str:
    """Sign up with TOTP, file a request on the page, cancel it by its link; returns the
    page with the form it was filed with. The browser is left at the second-factor
    step."""
    await sign_up(client, language=language)
    await enable_totp(client, clock)
    await enable_backup_codes(client)
    await log_out(client)
    redirected_to(await log_in(client), "/login/second-factor")
    form_html = await get(client, "/login/recovery")
    r = await submit(client, form_html, "/login/recovery", description=WHAT, channel="email")
    redirected_to(r, "/login/recovery?filed=1")
    html = await get(client, "/login/recovery")
    link = "/recovery/cancel/" + html.split('href="/recovery/cancel/')[1].split('"')[0]
    await cancel_by_link(client, link)
    return form_html


async def test_the_page_says_how_long_to_wait(client: httpx.AsyncClient, clock: FrozenClock,
                                              runtime: Runtime) -> None:
    tab = await _file_and_cancel_on_the_page(client, clock, "en")
    html = await get(client, "/login/recovery")
    assert "cancelled or rejected lately. You can send a new one in 24 hours." in html
    assert 'action="/login/recovery"' not in html  # no form to fill in for nothing
    assert "Use a backup code" in html
    # The form still open in another tab is refused with the same words.
    r = await submit(client, tab, "/login/recovery", description=WHAT, channel="email")
    assert "You can send a new one in 24 hours." in check(r, 429)
    assert len(await audit_events(runtime, "recovery.requested")) == 1  # told no one

    # A login attempt lasts minutes: a day later the user logs in again.
    clock.advance(hours=23, minutes=1)
    redirected_to(await log_in(client), "/login/second-factor")
    assert "You can send a new one in 59 minutes." in await get(client, "/login/recovery")
    r = await submit(client, tab, "/login/recovery", description=WHAT, channel="email")
    assert "You can send a new one in 59 minutes." in check(r, 429)
    clock.advance(minutes=58, seconds=59)
    redirected_to(await log_in(client), "/login/second-factor")
    assert "You can send a new one in 1 minute." in await get(client, "/login/recovery")
    clock.advance(seconds=1)
    html = await get(client, "/login/recovery")
    assert form(html, "/login/recovery") and "lately" not in html
    r = await submit(client, html, "/login/recovery", description=WHAT, channel="email")
    redirected_to(r, "/login/recovery?filed=1")


async def test_the_page_says_how_long_to_wait_in_russian(client: httpx.AsyncClient,
                                                         clock: FrozenClock) -> None:
    await _file_and_cancel_on_the_page(client, clock, "ru")
    html = await get(client, "/login/recovery?lang=ru")
    assert "Новый можно отправить через 24 часа." in html, html
    clock.advance(hours=19)
    redirected_to(await log_in(client), "/login/second-factor")
    assert "через 5 часов." in await get(client, "/login/recovery")
    clock.advance(hours=4, minutes=39)
    redirected_to(await log_in(client), "/login/second-factor")
    assert "через 21 минуту." in await get(client, "/login/recovery")


# --- a portal, through the integration API ------------------------------------------------


async def test_the_api_refuses_a_new_request_after_a_cancel(client: httpx.AsyncClient,
                                                            runtime: Runtime,
                                                            clock: FrozenClock,
                                                            acme: Portal) -> None:
    rt = runtime
    uid = await portal_user(client, acme, rt)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    await cancel_by_link(client, "/recovery/cancel/" + recovery.cancel_token(rt, first))
    told = {to: len(await recovery_notices(client, rt, to)) for to in (EMAIL, OTHER_EMAIL, PHONE)}
    assert all(told.values()), told  # the filing and the cancellation

    got = problem(await file(client, acme, uid), 429, "recovery_cooldown")
    assert got["retryable"] is True and got["retry_after"] == DAY, got
    refusal = await file(client, acme, uid)
    assert refusal.headers["retry-after"] == str(DAY)
    # The refusal tells no one and records no request.
    for to in (EMAIL, OTHER_EMAIL, PHONE):
        assert len(await recovery_notices(client, rt, to)) == told[to], to
    assert len(await audit_of(rt, uid, "recovery.requested")) == 1
    assert (await state(client, acme, uid))["id"] == first

    clock.advance(hours=12)
    got = problem(await file(client, acme, uid), 429, "recovery_cooldown")
    assert got["retry_after"] == DAY // 2
    clock.advance(hours=12)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    assert (await state(client, acme, uid))["id"] == r.json()["id"] != first
    assert len(await recovery_notices(client, rt, OTHER_EMAIL)) == told[OTHER_EMAIL] + 1


async def test_the_api_refuses_a_new_request_after_a_rejection(client: httpx.AsyncClient,
                                                               runtime: Runtime,
                                                               clock: FrozenClock,
                                                               acme: Portal) -> None:
    rt = runtime
    uid = await portal_user(client, acme, rt)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    agent = await staff.create(rt, Actor(name="cli"), email="agent@example.com",
                               name="Ann Agent", role="support",
                               password="staff-correct-horse-42")
    await recovery.reject(rt, staff.as_actor(Actor(), agent.staff), agent.staff,
                          r.json()["id"], "The caller did not know the account")
    before = len(await recovery_notices(client, rt, EMAIL))
    got = problem(await file(client, acme, uid), 429, "recovery_cooldown")
    assert got["retry_after"] == DAY
    clock.advance(hours=23, minutes=59)
    got = problem(await file(client, acme, uid), 429, "recovery_cooldown")
    assert got["retry_after"] == 60
    assert len(await recovery_notices(client, rt, EMAIL)) == before  # told no one
    assert len(await audit_of(rt, uid, "recovery.requested")) == 1
    clock.advance(minutes=1)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    assert len(await recovery_notices(client, rt, EMAIL)) == before + 1


async def test_the_api_files_at_once_after_a_completed_request(client: httpx.AsyncClient,
                                                               runtime: Runtime,
                                                               clock: FrozenClock,
                                                               acme: Portal) -> None:
    rt = runtime
    uid = await portal_user(client, acme, rt)
    r = await file(client, acme, uid)
    request_id = r.json()["id"]
    agent, sup1, _ = await make_staff(rt)
    await recovery.record_checks(rt, Actor(), agent.staff, request_id, CHECKLIST)
    await recovery.approve(rt, staff.as_actor(Actor(), sup1.staff), sup1.staff, request_id)
    clock.advance(hours=rt.settings.recovery_delay_hours, seconds=1)
    assert await recovery.complete_due(rt) == 1
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
