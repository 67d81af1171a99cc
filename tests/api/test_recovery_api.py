"""Lock-out recovery for a portal's users, through the integration API: the portal files
the same request the hosted pages file (four eyes, waiting period, notices with the
cancel link to every verified contact), reads its state, and sees only its own users.
Runs on SQLite and on PostgreSQL, over several workers."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, apps, notifications, recovery, staff
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, Method, RecoveryRequest
from tests.api.helpers import problem
from tests.api.ops_support import last_code, outbox
from tests.pages.helpers import get, redirected_to, submit, totp_now

PHONE = "+79161234567"
EMAIL = "jane@example.com"
OTHER_EMAIL = "jane.home@example.org"
END_USER = {"StepUp-End-User-IP": "198.51.100.23",
            "StepUp-End-User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}
DESCRIPTION = "Lost my phone with the authenticator app; no backup codes."
STAFF_PASSWORD = "staff-correct-horse-42"
PUBLIC_FIELDS = {"id", "status", "created_at", "checked_at", "decided_at", "effective_at",
                 "completed_at", "cancelled_at"}
CANCEL_LINK = re.compile(r"http://testserver(/recovery/cancel/[0-9a-f]+\.[0-9a-f]+)")


@dataclass
class Portal:
    key_id: str
    headers: dict[str, str]


async def portal_key(rt: Runtime, app: str, display_name: str) -> Portal:
    await apps.create(rt, Actor(name="test"), app, display_name=display_name)
    row, token = await apikeys.create(rt, "p", "app", Actor(name="test"), app=app)
    return Portal(key_id=row.id, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def acme(runtime: Runtime) -> Portal:
    return await portal_key(runtime, "acme", "Acme Broker")


@pytest.fixture
async def rival(runtime: Runtime) -> Portal:
    return await portal_key(runtime, "rival", "Rival Exchange")


def recovery_url(uid: str) -> str:
    return f"/api/v1/users/{uid}/recovery"


async def file(client: httpx.AsyncClient, portal: Portal, uid: str,
               **body: Any) -> httpx.Response:
    payload = {"description": DESCRIPTION,
               "contact": {"channel": "phone", "phone": "+44 20 7946 0018",
                           "best_time": "weekdays after 6 pm"}, **body}
    return await client.post(recovery_url(uid), json=payload,
                             headers={**portal.headers, **END_USER})


async def state(client: httpx.AsyncClient, portal: Portal, uid: str) -> dict[str, Any]:
    r = await client.get(recovery_url(uid), headers=portal.headers)
    assert r.status_code == 200, r.text
    body = dict(r.json())
    assert set(body) <= PUBLIC_FIELDS, body  # never notes, checks or who did them
    return body


async def enrol(client: httpx.AsyncClient, portal: Portal, uid: str, method: str,
                channel: str, to: str, **params: str) -> None:
    base = f"/api/v1/users/{uid}/methods/{method}/enrollment"
    r = await client.post(base, json=params, headers=portal.headers)
    assert r.status_code == 202, r.text
    r = await client.post(f"{base}/confirm", json={"code": await last_code(client, to, channel)},
                          headers=portal.headers)
    assert r.status_code == 200 and r.json()["enabled"], r.text


async def portal_user(client: httpx.AsyncClient, portal: Portal, rt: Runtime) -> str:
    """A user of the portal (no StepUp password) with a verified phone (SMS method) and a
    second verified address (e-mail method); their earlier notices already sent."""
    r = await client.post("/api/v1/users", json={"email": EMAIL, "external_id": "client-1"},
                          headers=portal.headers)
    assert r.status_code == 201, r.text
    uid = str(r.json()["id"])
    await enrol(client, portal, uid, "sms", "sms", PHONE, phone=PHONE)
    await enrol(client, portal, uid, "email", "email", OTHER_EMAIL, email=OTHER_EMAIL)
    await notifications.deliver_due(rt)
    return uid


async def recovery_notices(client: httpx.AsyncClient, rt: Runtime, to: str
                           ) -> list[dict[str, Any]]:
    await notifications.deliver_due(rt)
    return [m for m in await outbox(client, to)
            if "request to reset two-factor authentication" in m["body"]]


async def audit_of(rt: Runtime, uid: str, event: str) -> list[AuditEvent]:
    async with rt.db() as db:
        q = (select(AuditEvent).where(AuditEvent.user_id == uid, AuditEvent.event == event)
             .order_by(AuditEvent.id))
        return list((await db.execute(q)).scalars().all())


async def staff_log_in(client: httpx.AsyncClient, who: staff.NewStaff,
                       clock: FrozenClock) -> None:
    html = await get(client, "/admin/login")
    r = await submit(client, html, "/admin/login", email=who.staff.email,
                     password=STAFF_PASSWORD)
    redirected_to(r, "/admin/second-factor")
    html = await get(client, "/admin/second-factor")
    r = await submit(client, html, "/admin/second-factor", code=totp_now(who.secret, clock))
    redirected_to(r, "/admin")
    clock.advance(30)


async def test_the_portal_files_the_same_request_the_pages_file(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock,
        acme: Portal) -> None:
    rt = runtime
    uid = await portal_user(client, acme, rt)
    problem(await client.get(recovery_url(uid), headers=acme.headers), 404, "not_found")

    # Filed: 201 with the public state.
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["status"] == "requested" and filed["created_at"].endswith("Z")
    assert set(filed) == {"id", "status", "created_at"}, filed
    request_id = filed["id"]

    # Every verified contact hears at once; the e-mails carry the cancel link and the
    # end user's address (never the portal's).
    notices = {to: await recovery_notices(client, rt, to) for to in (EMAIL, OTHER_EMAIL, PHONE)}
    assert all(len(n) == 1 for n in notices.values()), notices
    cancel = "/recovery/cancel/" + recovery.cancel_token(rt, request_id)
    for to in (EMAIL, OTHER_EMAIL):
        body = notices[to][0]["body"]
        link = CANCEL_LINK.search(body)
        assert link and link.group(1) == cancel, body
        assert "198.51.100.23" in body and "203.0.113.7" not in body
    assert notices[PHONE][0]["channel"] == "sms"

    # The audit: the end user's address and browser, the portal's key as the actor.
    [event] = await audit_of(rt, uid, "recovery.requested")
    assert event.actor == f"app:{acme.key_id}"
    assert event.ip == "198.51.100.23" and "Firefox" in (event.user_agent or "")
    assert event.data["via"] == "api" and event.data["request"] == request_id
    async with rt.db() as db:
        row = await db.get(RecoveryRequest, request_id)
        assert row is not None and row.ip == "198.51.100.23"
        assert row.contact["via"] == "api" and row.contact["by"] == f"app:{acme.key_id}"
        assert row.contact["phone"] == "+44 20 7946 0018"

    # One open request at a time.
    problem(await file(client, acme, uid), 409, "recovery_already_open")
    assert (await state(client, acme, uid))["status"] == "requested"

    # The support console lists it, opens it, says where it came from, and checks it.
    agent = await staff.create(rt, Actor(name="cli"), email="agent@example.com",
                               name="Ann Agent", role="support", password=STAFF_PASSWORD)
    sup = await staff.create(rt, Actor(name="cli"), email="sup@example.com",
                             name="Sam Supervisor", role="supervisor",
                             password=STAFF_PASSWORD)
    await staff_log_in(client, agent, clock)
    html = await get(client, "/admin")
    assert f'href="/admin/recovery/{request_id}"' in html and "via the API" in html
    html = await get(client, f"/admin/recovery/{request_id}")
    assert DESCRIPTION.split(";")[0] in html and "+44 20 7946 0018" in html
    assert "Acme Broker" in html and f"app:{acme.key_id}" in html
    r = await submit(client, html, f"/admin/recovery/{request_id}/check",
                     **{f"check_{item}": "1" for item in rt.settings.recovery_checklist})
    redirected_to(r, f"/admin/recovery/{request_id}?done=checked")
    checked = await state(client, acme, uid)
    assert checked["status"] == "checked" and "checked_at" in checked

    # Four eyes, then the waiting period.
    approved = await recovery.approve(rt, staff.as_actor(Actor(), sup.staff), sup.staff,
                                      request_id, "Checks are complete")
    after = await state(client, acme, uid)
    assert after["status"] == "approved" and approved.effective_at is not None
    assert after["effective_at"] == approved.effective_at.isoformat().replace("+00:00", "Z")
    clock.advance(hours=rt.settings.recovery_delay_hours + 1)
    assert await recovery.complete_due(rt) == 1
    done = await state(client, acme, uid)
    assert done["status"] == "completed" and "completed_at" in done and "decided_at" in done
    async with rt.db() as db:
        left = (await db.execute(select(Method).where(Method.user_id == uid))).scalars().all()
    assert list(left) == []

    # Closed: the portal may file again.
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    assert (await state(client, acme, uid))["id"] == r.json()["id"]


async def test_another_apps_key_sees_no_such_user(client: httpx.AsyncClient,
                                                  runtime: Runtime, acme: Portal,
                                                  rival: Portal) -> None:
    uid = await portal_user(client, acme, runtime)
    problem(await file(client, rival, uid), 404, "not_found")
    problem(await client.get(recovery_url(uid), headers=rival.headers), 404, "not_found")
    assert await audit_of(runtime, uid, "recovery.requested") == []
    problem(await file(client, acme, "no-such-user"), 404, "not_found")
    # Nor are people who signed up on StepUp's own pages any portal's users.
    r = await client.post("/api/v1/accounts", json={"email": "self@example.com",
                                                    "password": "violet-harbour-7-lanterns",
                                                    "pin": "417293"})
    assert r.status_code == 201, r.text
    problem(await file(client, acme, r.json()["id"]), 404, "not_found")
    # And the right key still works.
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    problem(await client.get(recovery_url(uid), headers=rival.headers), 404, "not_found")


@pytest.mark.parametrize(("body", "field"), [
    ({"contact": {"channel": "fax"}}, "contact.channel"),
    ({"contact": {"channel": "phone"}}, "contact.phone"),
    ({"contact": {"channel": "phone", "phone": "   "}}, "contact.phone"),
    ({"contact": {"channel": "phone", "phone": "call my office"}}, "contact.phone"),
    ({"contact": {"channel": "phone", "phone": "12"}}, "contact.phone"),
    ({"contact": {"channel": "phone", "phone": "+44 20 7946 0018 " * 3}}, "contact.phone"),
    ({"description": "   "}, "description"),
])
async def test_bad_input_names_the_field(client: httpx.AsyncClient, runtime: Runtime,
                                         acme: Portal, body: dict[str, Any],
                                         field: str) -> None:
    uid = await portal_user(client, acme, runtime)
    got = problem(await file(client, acme, uid, **body), 422, "validation_error")
    assert got["field"] == field, got
    problem(await client.get(recovery_url(uid), headers=acme.headers), 404, "not_found")


async def test_schema_limits_and_an_e_mail_contact(client: httpx.AsyncClient,
                                                   runtime: Runtime, acme: Portal) -> None:
    uid = await portal_user(client, acme, runtime)
    got = problem(await file(client, acme, uid, description="x" * 2001), 422,
                  "validation_error")
    assert got["errors"][0]["field"] == "description"
    got = problem(await file(client, acme, uid, contact={"channel": "email", "fax": "1"}),
                  422, "validation_error")
    assert got["errors"][0]["field"] == "contact.fax"
    # The portal forwards what its user wrote, however short; e-mail needs no phone.
    r = await file(client, acme, uid, description="Lost it", contact={"channel": "email"})
    assert r.status_code == 201, r.text
    async with runtime.db() as db:
        row = await db.get(RecoveryRequest, r.json()["id"])
        assert row is not None and row.description == "Lost it"
        assert row.contact["channel"] == "email" and row.contact["phone"] is None


async def test_the_cancel_link_cancels_it(client: httpx.AsyncClient, runtime: Runtime,
                                          clock: FrozenClock, acme: Portal) -> None:
    uid = await portal_user(client, acme, runtime)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    [notice] = await recovery_notices(client, runtime, OTHER_EMAIL)
    link = CANCEL_LINK.search(notice["body"])
    assert link, notice["body"]
    html = await get(client, link.group(1))
    assert "Cancel the request" in html
    assert (await state(client, acme, uid))["status"] == "requested"  # a GET changes nothing
    r = await submit(client, html, link.group(1))
    assert r.status_code == 200 and "Recovery request cancelled" in r.text
    cancelled = await state(client, acme, uid)
    assert cancelled["status"] == "cancelled" and "cancelled_at" in cancelled
    [event] = await audit_of(runtime, uid, "recovery.cancelled")
    assert event.actor == "cancel-link"
    # No longer open: after the cooldown (a day) the portal may file a new one, which is
    # now the latest.
    problem(await file(client, acme, uid), 429, "recovery_cooldown")
    clock.advance(hours=runtime.settings.recovery_cooldown_hours)
    r = await file(client, acme, uid)
    assert r.status_code == 201, r.text
    assert await state(client, acme, uid) == r.json()


async def test_two_racing_filings_open_one_request(client: httpx.AsyncClient,
                                                   runtime: Runtime, acme: Portal) -> None:
    uid = await portal_user(client, acme, runtime)
    answers = await asyncio.gather(*(file(client, acme, uid) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409], \
        [r.text for r in answers]
    assert len(await audit_of(runtime, uid, "recovery.requested")) == 1
    assert len(await recovery_notices(client, runtime, EMAIL)) == 1
