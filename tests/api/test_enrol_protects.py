"""Enabling asks what to protect (issue 16, item 1): the confirm call takes an optional
``protects``, confirmed by the code just entered (no second code); it is audited like a
switch and told in the enable notice; absent, the first method protects login and any
other nothing. Login then offers every method that protects login, and backup codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from stepup.services import apikeys, notifications
from stepup.services.runtime import Actor
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    PIN,
    auth,
    login,
    method_view,
    problem,
    session_for,
    totp_now,
)
from tests.api.oob_support import UK_MOBILE, Stack
from tests.api.test_notifications import queued

BOTH = {"login": True, "withdrawal": True}


async def signed_in(stack: Stack, email: str = EMAIL) -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": "violet-harbour-7-lanterns", "pin": PIN})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, email)


async def confirm(stack: Stack, token: str, method: str, code: str,
                  protects: dict[str, Any] | None) -> Any:
    body: dict[str, Any] = {"code": code}
    if protects is not None:
        body["protects"] = protects
    return await stack.client.post(f"/api/v1/me/methods/{method}/enrollment/confirm",
                                   json=body, headers=auth(token))


async def totp_secret(stack: Stack, token: str) -> str:
    r = await stack.enroll(token, "totp")
    assert r.status_code == 200, r.text
    return parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]


async def test_the_code_that_confirms_sms_also_confirms_what_it_protects(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    r = await stack.enroll(token, "sms", phone=UK_MOBILE)
    assert r.status_code == 202, r.text
    r = await confirm(stack, token, "sms", stack.last_code("sms", UK_MOBILE), BOTH)
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is True and r.json()["protects"] == BOTH
    assert (await method_view(stack.client, token, "sms"))["protects"] == BOTH
    # No second code was sent to confirm the choice.
    assert not [m for m in stack.sms_to(UK_MOBILE)[1:] if "#" in m]

    # Audited like a switch (from "protects nothing"), beside the enable event.
    switched = await stack.audit("method.protection_switched")
    assert [e.data["method"] for e in switched] == ["sms"]
    assert switched[0].data["before"] == {"login": False, "withdrawal": False}
    assert switched[0].data["after"] == BOTH and switched[0].data["at_enrollment"] is True
    enabled = await stack.audit("method.enabled")
    assert enabled[-1].data["after"] == BOTH

    # One notice, the enable notice, says what is now protected.
    # (by e-mail, and by SMS to the phone the method just verified)
    assert {n.kind for n in await queued(stack)} == {"method.enabled"}
    assert await notifications.deliver_due(stack.rt) >= 1
    notices = [m for m in stack.mail_to(EMAIL) if "security notice" in str(m["Subject"])]
    assert len(notices) == 1, [m["Subject"] for m in notices]
    plain = notices[0].get_body(preferencelist=("plain",))
    assert plain is not None
    assert "SMS codes were enabled on your account. Protected now: Login, Withdrawal." in (
        plain.get_content())


async def test_an_unknown_operation_is_refused_and_spends_nothing(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await totp_secret(stack, token)
    code = totp_now(secret, stack.clock)
    r = await confirm(stack, token, "totp", code, {"login": True, "deposit": True})
    body = problem(r, 422, "validation_error")
    assert body["field"] == "protects", body
    view = await method_view(stack.client, token, "totp")
    assert view["pending"] is True and view["enabled"] is False
    # Not a wrong code: the same code still confirms.
    r = await confirm(stack, token, "totp", code, {"withdrawal": True})
    assert r.status_code == 200, r.text
    # Named operations are set; the others keep the default (first method: login).
    assert r.json()["protects"] == BOTH
    r = await confirm(stack, token, "totp", code, {"login": "maybe"})
    problem(r, 422, "validation_error")


async def test_absent_or_partial_protects_keep_the_first_method_rule(
        start_stack: StartStack) -> None:
    """Absent (the SMS below) or naming nothing (``{}``): the default."""
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await totp_secret(stack, token)
    r = await confirm(stack, token, "totp", totp_now(secret, stack.clock), {})
    assert r.status_code == 200 and r.json()["protects"] == {"login": True,
                                                             "withdrawal": False}
    assert await stack.audit("method.protection_switched") == []  # no choice, no switch
    # A later method protects nothing by default…
    r = await stack.enroll(token, "sms", phone=UK_MOBILE)
    assert r.status_code == 202, r.text
    r = await confirm(stack, token, "sms", stack.last_code("sms", UK_MOBILE), None)
    assert r.json()["protects"] == {"login": False, "withdrawal": False}, r.text
    # … and the user may choose otherwise.
    r = await stack.enroll(token, "email")
    assert r.status_code == 202, r.text
    r = await confirm(stack, token, "email", stack.last_code("email", EMAIL),
                      {"withdrawal": True})
    assert r.json()["protects"] == {"login": False, "withdrawal": True}, r.text


async def test_a_first_method_may_be_enabled_protecting_nothing(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await totp_secret(stack, token)
    r = await confirm(stack, token, "totp", totp_now(secret, stack.clock),
                      {"login": False, "withdrawal": False})
    assert r.json()["protects"] == {"login": False, "withdrawal": False}, r.text
    r = await login(stack.client)
    assert r.json()["status"] == "authenticated"  # nothing protects login


async def test_backup_codes_take_protects_with_the_pin_others_with_the_confirm(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    token = await signed_in(stack)
    r = await stack.client.post("/api/v1/me/methods/backup_codes/enrollment",
                                json={"pin": PIN, "protects": {"withdrawal": True}},
                                headers=auth(token))
    assert r.status_code == 201, r.text
    view = await method_view(stack.client, token, "backup_codes")
    # The first method: login by default; withdrawal as chosen.
    assert view["protects"] == BOTH
    switched = await stack.audit("method.protection_switched")
    assert [e.data["method"] for e in switched] == ["backup_codes"]

    # A method that is confirmed later takes it with its confirmation: refused here,
    # and nothing is left pending.
    r = await stack.client.post("/api/v1/me/methods/totp/enrollment",
                                json={"pin": PIN, "protects": BOTH}, headers=auth(token))
    assert problem(r, 422, "validation_error")["field"] == "protects"
    view = await method_view(stack.client, token, "totp")
    assert view["pending"] is False and view["enabled"] is False


async def test_a_portal_confirms_on_the_users_behalf_with_protects(
        start_stack: StartStack) -> None:
    stack = await start_stack()
    _row, key = await apikeys.create(stack.rt, "portal", "app", Actor(name="test"))
    r = await stack.client.post("/api/v1/users", json={"email": "max@example.com"},
                                headers=auth(key))
    assert r.status_code == 201, r.text
    user = r.json()["id"]
    base = f"/api/v1/users/{user}/methods/totp/enrollment"
    r = await stack.client.post(base, json={}, headers=auth(key))
    assert r.status_code == 200, r.text
    secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
    r = await stack.client.post(f"{base}/confirm", json={
        "code": totp_now(secret, stack.clock), "protects": {"withdrawal": True}},
        headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.json()["protects"] == BOTH
    r = await stack.client.post(f"{base}/confirm", json={"code": "123456",
                                                        "protects": {"refund": True}},
                                headers=auth(key))
    assert problem(r, 422, "validation_error")["field"] == "protects"


async def test_login_offers_every_method_that_protects_login_and_backup_codes(
        start_stack: StartStack) -> None:
    """API.md: ``methods`` lists every enabled method that protects login, and backup
    codes whenever some are unused — a method switched on only for withdrawals is not
    offered."""
    stack = await start_stack()
    token = await signed_in(stack)
    secret = await totp_secret(stack, token)
    r = await confirm(stack, token, "totp", totp_now(secret, stack.clock), BOTH)
    assert r.status_code == 200, r.text
    stack.clock.advance(30)
    for method, to, protects in (("sms", UK_MOBILE, {"login": True}),
                                 ("email", EMAIL, {"login": False, "withdrawal": True})):
        params = {"phone": to} if method == "sms" else {}
        r = await stack.enroll(token, method, **params)
        assert r.status_code == 202, r.text
        r = await confirm(stack, token, method, stack.last_code(method, to), protects)
        assert r.status_code == 200, r.text
    r = await stack.client.post("/api/v1/me/methods/backup_codes/enrollment",
                                json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 201, r.text
    assert (await method_view(stack.client, token, "backup_codes"))["protects"] == {
        "login": False, "withdrawal": False}

    r = await login(stack.client)
    assert r.json()["status"] == "second_factor_required", r.text
    offered = [m["type"] for m in r.json()["methods"]]
    assert sorted(offered) == ["backup_codes", "sms", "totp"], offered
    assert offered[-1] == "backup_codes"  # the fallback comes last
