"""A portal manages its users' whole lifecycle through the integration API: read, look
up and list them (only its own app's), change the record (audited by field name,
told to the user), delete them (rows erased, the audit chain still verifies), lift
locks, regenerate backup codes on their behalf and read their security events. Another
app's key gets 404 for every one of these calls."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from stepup.domain.clock import FrozenClock
from stepup.domain.hashing import new_id
from stepup.services import apikeys, apps, audit, notifications
from stepup.services.runtime import Actor, Runtime
from stepup.store import models as m
from stepup.web.api.user_lifecycle import encode_cursor
from tests.api.helpers import PIN, auth, problem, totp_now, wrong_totp
from tests.api.ops_support import WITHDRAWAL, last_code, outbox, totp_on_behalf

USERS = "/api/v1/users"
IP = "198.51.100.23"
AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/126.0.0.0 Safari/537.36")
NEW_PIN = "902116"


@pytest.fixture
async def keys(runtime: Runtime) -> tuple[str, str]:
    """A key of the app "default" and one of the app "other"."""
    _row, ours = await apikeys.create(runtime, "p", "app", Actor(name="test"))
    await apps.create(runtime, Actor(name="test"), "other")
    _row, theirs = await apikeys.create(runtime, "o", "app", Actor(name="test"), app="other")
    return ours, theirs


def h(key: str) -> dict[str, str]:
    """The key, and the end user's context as the portal forwards it."""
    return {**auth(key), "StepUp-End-User-IP": IP, "StepUp-End-User-Agent": AGENT}


async def new_user(client: httpx.AsyncClient, key: str, email: str, **body: Any
                   ) -> dict[str, Any]:
    r = await client.post(USERS, json={"email": email, **body}, headers=h(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def read(client: httpx.AsyncClient, key: str, user_id: str) -> dict[str, Any]:
    r = await client.get(f"{USERS}/{user_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def events_named(runtime: Runtime, event: str) -> list[m.AuditEvent]:
    async with runtime.db() as db:
        q = select(m.AuditEvent).where(m.AuditEvent.event == event).order_by(m.AuditEvent.id)
        return list((await db.execute(q)).scalars().all())


def facts(event: m.AuditEvent) -> dict[str, Any]:
    """The event's data without ``via_ip`` (the portal's own server, added to every call)."""
    return {k: v for k, v in (event.data or {}).items() if k != "via_ip"}


def rfc3339(clock: FrozenClock, seconds: int = 0) -> str:
    return (clock.now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def test_a_user_with_methods_locks_and_unlock(
        client: httpx.AsyncClient, keys: tuple[str, str], clock: FrozenClock) -> None:
    key, _ = keys
    uid = (await new_user(client, key, "jane@example.com", external_id="c-1", language="ru",
                          pin=PIN))["id"]
    assert await read(client, key, uid) == {
        "id": uid, "email": "jane@example.com", "external_id": "c-1", "language": "ru",
        "created_at": rfc3339(clock), "verification_grade": 0,
        "identities": {"email_verified": False, "phone_verified": False},
        "methods": [], "locks": {"methods": {}}}

    secret = await totp_on_behalf(client, key, uid, clock)
    r = await client.post(f"{USERS}/{uid}/methods/backup_codes/enrollment", json={},
                          headers=auth(key))
    assert r.status_code == 201, r.text
    assert (await read(client, key, uid))["methods"] == [
        {"type": "totp", "enabled": True, "protects": {"login": True, "withdrawal": False}},
        {"type": "backup_codes", "enabled": True,
         "protects": {"login": False, "withdrawal": False}}]

    # Five wrong codes lock the method; the lock shows with the instant it ends.
    for attempt in range(5):
        r = await client.post(f"{USERS}/{uid}/verify", headers=h(key),
                              json={"method": "totp", "code": wrong_totp(secret, clock)})
        problem(r, 423 if attempt == 4 else 400,
                "method_locked" if attempt == 4 else "invalid_code")
    assert (await read(client, key, uid))["locks"] == {"methods": {"totp": rfc3339(clock, 60)}}
    # Five wrong PINs lock the PIN.
    for _ in range(5):
        await client.post(f"{USERS}/{uid}/methods/sms/enrollment", headers=h(key),
                          json={"pin": "135792", "phone": "+447700900123"})
    locks = (await read(client, key, uid))["locks"]
    assert set(locks) == {"pin", "methods"} and "totp" in locks["methods"]

    problem(await client.post(f"{USERS}/{uid}/unlock", json={"what": "sideways"},
                              headers=auth(key)), 422, "validation_error")
    r = await client.post(f"{USERS}/{uid}/unlock", json={"what": "totp"}, headers=h(key))
    assert r.status_code == 200 and r.json() == {"cleared": ["method:totp"]}, r.text
    assert (await read(client, key, uid))["locks"] == {"pin": locks["pin"], "methods": {}}
    r = await client.post(f"{USERS}/{uid}/verify", headers=h(key),
                          json={"method": "totp", "code": totp_now(secret, clock)})
    assert r.status_code == 200 and r.json()["valid"] is True, r.text

    r = await client.post(f"{USERS}/{uid}/unlock", headers=h(key))  # no body: everything
    assert r.status_code == 200, r.text
    assert set(r.json()["cleared"]) == {"account", "pin", "method:totp",
                                        "method:backup_codes"}
    assert (await read(client, key, uid))["locks"] == {"methods": {}}
    problem(await client.get(f"{USERS}/nobody", headers=auth(key)), 404, "not_found")


async def test_lookups_find_only_the_keys_own_users(client: httpx.AsyncClient,
                                                    keys: tuple[str, str]) -> None:
    ours, theirs = keys
    a = await new_user(client, ours, "jane@example.com", external_id="c-1")
    b = await new_user(client, theirs, "jane@example.com", external_id="c-1")
    c = await new_user(client, ours, "only-ours@example.com")
    assert a["id"] != b["id"]

    async def ids(key: str, **params: str) -> list[str]:
        r = await client.get(USERS, params=params, headers=auth(key))
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"] is None
        return [u["id"] for u in r.json()["users"]]

    assert await ids(ours, email="JANE@Example.com") == [a["id"]]
    assert await ids(theirs, email="jane@example.com") == [b["id"]]
    assert await ids(ours, email="only-ours@example.com") == [c["id"]]
    assert await ids(theirs, email="only-ours@example.com") == []
    assert await ids(ours, external_id="c-1") == [a["id"]]
    assert await ids(theirs, external_id="c-1") == [b["id"]]
    assert await ids(ours, external_id="c-1", email="jane@example.com") == [a["id"]]
    assert await ids(ours, external_id="c-1", email="only-ours@example.com") == []
    assert await ids(ours, external_id="c-404") == []
    r = await client.get(USERS, params={"email": "jane@example.com"}, headers=auth(ours))
    assert r.json()["users"][0] == await read(client, ours, a["id"])
    problem(await client.get(USERS, params={"email": "not-an-email"}, headers=auth(ours)),
            422, "validation_error")


async def test_paging_through_the_apps_users(client: httpx.AsyncClient,
                                             keys: tuple[str, str]) -> None:
    ours, theirs = keys
    mine = {(await new_user(client, ours, f"u{i}@example.com"))["id"] for i in range(7)}
    for i in range(2):
        await new_user(client, theirs, f"t{i}@example.com")

    pages: list[dict[str, Any]] = []
    while not pages or pages[-1]["next_cursor"]:
        cursor = {"cursor": pages[-1]["next_cursor"]} if pages else {}
        r = await client.get(USERS, params={"limit": "3", **cursor}, headers=auth(ours))
        assert r.status_code == 200, r.text
        pages.append(r.json())
    seen = [u["id"] for page in pages for u in page["users"]]
    assert [len(page["users"]) for page in pages] == [3, 3, 1] and seen == sorted(mine)
    r = await client.get(USERS, headers=auth(ours))  # default limit: all seven
    assert [u["id"] for u in r.json()["users"]] == seen and r.json()["next_cursor"] is None

    for params in ({"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"cursor": "%%%"},
                   {"cursor": "abc"}, {"cursor": encode_cursor("e", "5")}):
        problem(await client.get(USERS, params=params, headers=auth(ours)), 422,
                "validation_error")


async def test_another_apps_key_gets_404_for_every_call(client: httpx.AsyncClient,
                                                        keys: tuple[str, str]) -> None:
    ours, theirs = keys
    uid = (await new_user(client, ours, "jane@example.com", pin=PIN))["id"]
    r = await client.post(f"{USERS}/{uid}/methods/backup_codes/enrollment", json={},
                          headers=auth(ours))
    assert r.status_code == 201, r.text
    before = await read(client, ours, uid)
    calls = [("GET", f"{USERS}/{uid}", None), ("PATCH", f"{USERS}/{uid}", {"language": "ru"}),
             ("DELETE", f"{USERS}/{uid}", None), ("POST", f"{USERS}/{uid}/unlock", {}),
             ("POST", f"{USERS}/{uid}/methods/backup_codes/regenerate", {}),
             ("GET", f"{USERS}/{uid}/events", None)]
    for verb, url, body in calls:
        problem(await client.request(verb, url, json=body, headers=auth(theirs)), 404,
                "not_found")
    assert await read(client, ours, uid) == before
    # Nothing was done, nothing recorded.
    r = await client.get(f"{USERS}/{uid}/events", headers=auth(ours))
    assert [e["event"] for e in r.json()["events"]] == ["method.enabled", "account.created"]


async def test_patch_changes_the_record_audits_names_and_tells_the_user(
        client: httpx.AsyncClient, keys: tuple[str, str], runtime: Runtime,
        clock: FrozenClock) -> None:
    key, _ = keys
    uid = (await new_user(client, key, "jane@example.com", external_id="c-1", pin=PIN))["id"]
    # Verify the account e-mail: a code from the e-mail method reached it.
    r = await client.post(f"{USERS}/{uid}/methods/email/enrollment",
                          json={"email": "jane@example.com"}, headers=h(key))
    assert r.status_code == 202, r.text
    r = await client.post(f"{USERS}/{uid}/methods/email/enrollment/confirm", headers=h(key),
                          json={"code": await last_code(client, "jane@example.com", "email")})
    assert r.status_code == 200, r.text
    assert (await read(client, key, uid))["identities"]["email_verified"] is True
    await notifications.deliver_due(runtime)

    r = await client.patch(f"{USERS}/{uid}", headers=h(key),
                           json={"email": "Jane.Doe@Example.com", "pin": NEW_PIN})
    assert r.status_code == 200, r.text
    assert r.json() == await read(client, key, uid)
    assert r.json()["email"] == "jane.doe@example.com" and r.json()["external_id"] == "c-1"
    assert r.json()["identities"]["email_verified"] is False

    [event] = await events_named(runtime, "account.updated")
    assert facts(event) == {"fields": ["email", "pin"]} and event.ip == IP
    assert "jane.doe" not in json.dumps(event.data) and NEW_PIN not in json.dumps(event.data)
    async with runtime.db() as db:
        q = select(m.NotificationQueue).where(m.NotificationQueue.sent_at.is_(None))
        queued = sorted((n.kind, runtime.destinations.read(n))
                        for n in (await db.execute(q)).scalars())
    assert queued == [("account.email_changed", "jane.doe@example.com"),
                      ("account.email_changed", "jane@example.com"),
                      ("account.pin_changed", "jane.doe@example.com")]
    assert await notifications.deliver_due(runtime) == 3
    old = [x for x in await outbox(client, "jane@example.com", "email")
           if "e-mail address of your account was changed" in x["body"]]
    assert len(old) == 1 and IP in old[0]["body"] and "security notice" in old[0]["subject"]
    new = " ".join(x["body"] for x in await outbox(client, "jane.doe@example.com", "email"))
    assert "e-mail address of your account was changed" in new
    assert "The PIN of your account was changed." in new

    # The new PIN is the one asked from now on.
    r = await client.post(f"{USERS}/{uid}/methods/totp/enrollment", json={"pin": PIN},
                          headers=h(key))
    problem(r, 400, "pin_invalid")
    r = await client.post(f"{USERS}/{uid}/methods/totp/enrollment", json={"pin": NEW_PIN},
                          headers=h(key))
    assert r.status_code == 200, r.text

    # Language and external id: audited, not told; nothing sent changes nothing.
    r = await client.patch(f"{USERS}/{uid}", headers=h(key),
                           json={"language": "ru", "external_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["language"] == "ru" and r.json()["external_id"] is None
    for body in ({}, {"language": "ru", "email": "jane.doe@example.com"}):
        assert (await client.patch(f"{USERS}/{uid}", json=body, headers=h(key))
                ).status_code == 200
    assert [facts(e) for e in await events_named(runtime, "account.updated")] == [
        {"fields": ["email", "pin"]}, {"fields": ["external_id", "language"]}]
    assert await notifications.deliver_due(runtime) == 0


async def test_patch_refuses_what_another_user_of_the_app_has(client: httpx.AsyncClient,
                                                              keys: tuple[str, str]) -> None:
    ours, theirs = keys
    uid = (await new_user(client, ours, "jane@example.com", external_id="c-1"))["id"]
    await new_user(client, ours, "john@example.com", external_id="c-2")
    await new_user(client, theirs, "other@example.com", external_id="c-3")
    url = f"{USERS}/{uid}"

    r = await client.patch(url, json={"email": "JOHN@example.com"}, headers=auth(ours))
    assert problem(r, 409, "email_taken")["field"] == "email"
    r = await client.patch(url, json={"external_id": "c-2"}, headers=auth(ours))
    assert problem(r, 409, "user_conflict")["field"] == "external_id"
    assert (await read(client, ours, uid))["email"] == "jane@example.com"
    # Another app's e-mail and external id are free in this one.
    r = await client.patch(url, json={"email": "other@example.com", "external_id": "c-3"},
                           headers=auth(ours))
    assert r.status_code == 200 and r.json()["external_id"] == "c-3", r.text

    for body in ({"email": None}, {"pin": None}, {"language": None}, {"email": "nope"},
                 {"pin": "111111"}, {"pin": "12"}, {"language": "xx"}, {"external_id": ""},
                 {"password": "x"}):
        problem(await client.patch(url, json=body, headers=auth(ours)), 422,
                "validation_error")
    problem(await client.patch(f"{USERS}/nobody", json={}, headers=auth(ours)), 404,
            "not_found")


USER_TABLES = (m.Method, m.BackupCode, m.Guard, m.Challenge, m.Operation, m.Session,
               m.RememberedDevice, m.NotificationQueue, m.RecoveryRequest, m.Passkey,
               m.LoginFlow)


async def test_delete_erases_the_user_and_the_chain_still_verifies(
        client: httpx.AsyncClient, keys: tuple[str, str], runtime: Runtime,
        clock: FrozenClock) -> None:
    key, _ = keys
    uid = (await new_user(client, key, "jane@example.com", pin=PIN,
                          email_verified=True))["id"]  # the portal vouches
    keep = (await new_user(client, key, "john@example.com"))["id"]
    secret = await totp_on_behalf(client, key, uid, clock)
    for path, body in (("methods/backup_codes/enrollment", {}),
                       ("methods/email/enrollment", {"email": "jane@example.com"}),
                       ("verify", {"method": "totp", "code": wrong_totp(secret, clock)}),
                       ("operations", {"type": "withdrawal", "details": WITHDRAWAL})):
        r = await client.post(f"{USERS}/{uid}/{path}", json=body, headers=h(key))
        assert r.status_code in (201, 202, 400), r.text
    now = clock.now()
    async with runtime.db() as db:
        db.add(m.Session(id=new_id(), token_hash=new_id().encode()[:32], user_id=uid,
                         created_at=now, last_seen_at=now, expires_at=now))
        db.add(m.RememberedDevice(id=new_id(), user_id=uid, token_hash=new_id().encode()[:32],
                                  created_at=now, expires_at=now))
        db.add(m.RecoveryRequest(id=new_id(), user_id=uid, status="requested",
                                 description="lost my phone", contact={}, created_at=now,
                                 checks={}))
        await db.commit()

    async def left(user_id: str) -> dict[str, int]:
        async with runtime.db() as db:
            counts = {t.__tablename__: (await db.execute(
                select(func.count()).select_from(t).where(t.user_id == user_id))).scalar_one()
                for t in USER_TABLES}
            counts["users"] = (await db.execute(select(func.count()).select_from(m.User)
                                                .where(m.User.id == user_id))).scalar_one()
        return {t: n for t, n in counts.items() if n}

    assert set(await left(uid)) >= {"users", "methods", "backup_codes", "guards", "challenges",
                                    "operations", "sessions", "remembered_devices",
                                    "notification_queue", "recovery_requests"}
    r = await client.delete(f"{USERS}/{uid}", headers=h(key))
    assert r.status_code == 204 and r.content == b"", r.text
    assert await left(uid) == {}
    assert await left(keep) == {"users": 1}

    # The account's chain ends with the deletion, naming nobody; the chain of events
    # without an account keeps that chain's last hash.
    async with runtime.db() as db:
        q = select(m.AuditEvent).where(m.AuditEvent.user_id == uid).order_by(
            m.AuditEvent.id.desc())
        chain = list((await db.execute(q)).scalars().all())
    assert chain[0].event == "account.deleted" and facts(chain[0]) == {}
    assert chain[0].ip == IP and chain[0].actor.startswith("app:")
    [closing] = [e for e in await events_named(runtime, "account.deleted") if not e.user_id]
    assert facts(closing) == {"account": uid, "head": chain[0].hash}
    report = await audit.verify(runtime)
    assert report.ok, [str(b) for b in report.breaks]

    for verb, url in (("DELETE", f"{USERS}/{uid}"), ("GET", f"{USERS}/{uid}"),
                      ("GET", f"{USERS}/{uid}/events")):
        problem(await client.request(verb, url, headers=auth(key)), 404, "not_found")
    r = await client.get(USERS, params={"email": "jane@example.com"}, headers=auth(key))
    assert r.json()["users"] == []
    again = await new_user(client, key, "jane@example.com")  # a new person, a new id
    assert again["id"] != uid
    assert (await audit.verify(runtime)).ok


async def test_regenerate_backup_codes_on_behalf(client: httpx.AsyncClient,
                                                 keys: tuple[str, str],
                                                 runtime: Runtime) -> None:
    key, _ = keys
    uid = (await new_user(client, key, "jane@example.com"))["id"]
    url = f"{USERS}/{uid}/methods/backup_codes/regenerate"
    problem(await client.post(url, headers=h(key)), 409, "method_not_enabled")
    r = await client.post(f"{USERS}/{uid}/methods/backup_codes/enrollment", json={},
                          headers=h(key))
    first = r.json()["codes"]

    async def verify(code: str) -> httpx.Response:
        return await client.post(f"{USERS}/{uid}/verify", headers=h(key),
                                 json={"method": "backup_codes", "code": code})

    r = await client.post(url, headers=h(key))  # the portal vouches for the user
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store", r.text
    second = r.json()["codes"]
    assert len(second) == 10 and not set(second) & set(first)
    problem(await verify(first[0]), 400, "invalid_code")

    problem(await client.post(url, json={"code": first[1]}, headers=h(key)), 400,
            "invalid_code")
    r = await client.post(url, json={"code": second[0]}, headers=h(key))
    assert r.status_code == 201, r.text
    problem(await verify(second[1]), 400, "invalid_code")
    assert (await verify(r.json()["codes"][0])).status_code == 200

    events = await events_named(runtime, "backup_codes.regenerated")
    assert len(events) == 2 and all(e.actor.startswith("app:") and e.ip == IP
                                    for e in events)
    async with runtime.db() as db:
        q = select(func.count()).select_from(m.NotificationQueue).where(
            m.NotificationQueue.kind == "backup_codes.regenerated")
        assert (await db.execute(q)).scalar_one() == 2


async def test_events_newest_first_with_ip_and_device(client: httpx.AsyncClient,
                                                     keys: tuple[str, str]) -> None:
    key, _ = keys
    uid = (await new_user(client, key, "jane@example.com"))["id"]
    await new_user(client, key, "john@example.com")
    await client.patch(f"{USERS}/{uid}", json={"language": "ru"}, headers=h(key))
    await client.post(f"{USERS}/{uid}/unlock", json={"what": "pin"}, headers=h(key))

    r = await client.get(f"{USERS}/{uid}/events", headers=auth(key))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert [e["event"] for e in events] == ["account.unlocked", "account.updated",
                                            "account.created"]
    assert r.json()["next_cursor"] is None
    assert all(e["ip"] == IP and e["user_agent"] == "Chrome 126, Linux" for e in events)
    assert events[0]["created_at"].endswith("Z") and "fields" not in events[1]["details"]

    r = await client.get(f"{USERS}/{uid}/events", params={"limit": "2"}, headers=auth(key))
    page = r.json()
    assert [e["id"] for e in page["events"]] == [e["id"] for e in events[:2]]
    r = await client.get(f"{USERS}/{uid}/events", headers=auth(key),
                         params={"limit": "2", "cursor": page["next_cursor"]})
    assert r.json() == {"events": events[2:], "next_cursor": None}

    for params in ({"limit": "0"}, {"limit": "201"}, {"cursor": "***"},
                   {"cursor": encode_cursor("u", uid)}, {"cursor": encode_cursor("e", "0")},
                   {"cursor": encode_cursor("e", str(2 ** 63))}):
        problem(await client.get(f"{USERS}/{uid}/events", params=params, headers=auth(key)),
                422, "validation_error")
