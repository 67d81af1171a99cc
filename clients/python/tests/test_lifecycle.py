"""The calls the integration kit added, against a real ``stepup serve``: the user's
lifecycle, events with the end user's address, replays, passkeys, recovery, webhooks."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from soft_passkey import SoftPasskey
from standin import Answer, StandIn
from stepup_client import (
    AsyncStepUp,
    CodeAlreadyUsed,
    EndUser,
    InvalidCode,
    MethodLocked,
    NotFound,
    RecoveryAlreadyOpen,
    StepUp,
    UserConflict,
    ValidationError,
    WebhookDelivery,
    WebhookNotConfigured,
)
from stepup_testkit import Authenticator, Server, email

JANE = EndUser(ip="203.0.113.7", user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
                                            "Gecko/20100101 Firefox/128.0")


@pytest.fixture
def stepup(server: Server) -> Iterator[StepUp]:
    with StepUp(server.base_url, server.api_key, backoff=0.05) as client:
        yield client


@pytest.fixture
async def astepup(server: Server) -> AsyncIterator[AsyncStepUp]:
    async with AsyncStepUp(server.base_url, server.api_key, backoff=0.05) as client:
        yield client


def test_a_user_from_creation_to_deletion(stepup: StepUp) -> None:
    address, external = email(), f"ext-{secrets.token_hex(6)}"
    made = stepup.create_user(address, external_id=external, pin="417293", end_user=JANE)
    read = stepup.get_user(made.id)
    assert (read.id, read.email, read.external_id) == (made.id, address, external)
    assert read.created_at is not None and read.identities is not None
    assert read.methods == () and read.locks is not None and read.locks.account is None
    assert stepup.find_user(email=address.upper()) == read
    assert stepup.find_user(external_id=external) == read
    assert stepup.find_user(email=address, external_id="someone-else") is None

    new_address = email()
    changed = stepup.update_user(made.id, email=new_address, language="ru", end_user=JANE)
    assert (changed.email, changed.language, changed.external_id) == (
        new_address, "ru", external)
    assert stepup.update_user(made.id, external_id=None).external_id is None
    assert stepup.find_user(external_id=external) is None
    with pytest.raises(ValueError, match="at least one"):
        stepup.update_user(made.id)
    other = stepup.create_user(email())
    with pytest.raises(UserConflict):  # the e-mail is this user's; email_taken's parent
        stepup.create_user(new_address, external_id=f"ext-{secrets.token_hex(6)}",
                           language="en")

    page = stepup.list_users(limit=1)
    assert len(page.users) == 1 and page.next_cursor
    everyone = [u.id for u in stepup.iter_users(limit=2)]
    assert {made.id, other.id} <= set(everyone) and len(everyone) == len(set(everyone))

    stepup.delete_user(made.id, end_user=JANE)
    with pytest.raises(NotFound):
        stepup.get_user(made.id)
    with pytest.raises(NotFound):
        stepup.delete_user(made.id)
    assert stepup.find_user(email=new_address) is None


def test_the_portal_vouches_for_an_email(stepup: StepUp) -> None:
    plain = stepup.create_user(email())
    assert stepup.get_user(plain.id).identities.email_verified is False  # type: ignore[union-attr]
    vouched = stepup.create_user(email(), email_verified=True)
    assert stepup.get_user(vouched.id).identities.email_verified is True  # type: ignore[union-attr]
    changed = stepup.update_user(plain.id, email_verified=True)
    assert changed.identities is not None and changed.identities.email_verified is True


def test_events_carry_the_end_users_address(stepup: StepUp) -> None:
    uid = stepup.create_user(email(), end_user=JANE).id
    codes = stepup.enroll(uid, "backup_codes", end_user=JANE).codes
    stepup.verify(uid, "backup_codes", codes[0], end_user=JANE)
    with pytest.raises(InvalidCode):
        stepup.verify(uid, "backup_codes", "AAAAA-AAAAA",
                      end_user=EndUser(ip="2001:db8::1", user_agent="curl/8.5.0"))
    page = stepup.user_events(uid, limit=50)
    assert page.events and page.events[0].created_at >= page.events[-1].created_at
    ips = {e.ip for e in page.events}
    assert {"203.0.113.7", "2001:db8::1"} <= ips
    agents = {e.user_agent for e in page.events if e.ip == "203.0.113.7"}
    assert any(a and "Firefox" in a for a in agents), agents
    assert [e.id for e in stepup.iter_user_events(uid, limit=2)] == [e.id for e in page.events]
    with pytest.raises(ValueError, match="IPv4 or IPv6"):
        EndUser(ip="not an address")


def test_a_replayed_verify_answers_the_same_verification(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    start = stepup.enroll(uid, "totp")
    assert start.otpauth_uri
    app = Authenticator(start.otpauth_uri)
    stepup.confirm_enrollment(uid, "totp", app.code())
    code, key = app.code(), f"verify-{secrets.token_hex(8)}"
    first = stepup.verify(uid, "totp", code, end_user=JANE, idempotency_key=key)
    again = stepup.verify(uid, "totp", code, end_user=JANE, idempotency_key=key)
    assert again == first and first.valid
    with pytest.raises(CodeAlreadyUsed):  # without the key: the code is spent
        stepup.verify(uid, "totp", code)


def test_unlock_and_new_backup_codes(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    old = stepup.enroll(uid, "backup_codes").codes
    with pytest.raises(MethodLocked):
        for _ in range(10):
            try:
                stepup.verify(uid, "backup_codes", "AAAAA-AAAAA")
            except InvalidCode:
                continue
    locks = stepup.get_user(uid).locks
    assert locks is not None and "backup_codes" in locks.methods
    assert stepup.unlock_user(uid, "backup_codes", end_user=JANE).cleared == (
        "method:backup_codes",)
    assert "account" in stepup.unlock_user(uid).cleared  # "all": every kind of lock
    fresh = stepup.regenerate_backup_codes(uid, end_user=JANE)
    assert len(fresh.codes) == 10 and fresh.codes[0] not in repr(fresh)
    with pytest.raises(InvalidCode):
        stepup.verify(uid, "backup_codes", old[0])
    newer = stepup.regenerate_backup_codes(uid, fresh.codes[0])  # vouched by a code
    assert set(newer.codes).isdisjoint(fresh.codes)
    with pytest.raises(ValidationError) as bad:
        stepup.unlock_user(uid, "everything")
    assert bad.value.field == "what"


def test_passkeys_on_the_users_behalf(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    first, second = SoftPasskey(), SoftPasskey()
    start = stepup.enroll(uid, "webauthn")
    assert start.options and "challenge" in start.options
    stepup.confirm_enrollment(uid, "webauthn", json.dumps(first.create(start.options)))
    more = stepup.add_passkey(uid, end_user=JANE)
    assert more.method == "webauthn" and more.options
    added = stepup.confirm_passkey(uid, second.create(more.options), "Work laptop")
    assert added.passkeys is not None and len(added.passkeys) == 2
    first_id = next(p.id for p in added.passkeys if p.name != "Work laptop")
    renamed = stepup.rename_passkey(uid, first_id, "Phone")
    assert renamed.passkeys and {p.name for p in renamed.passkeys} == {"Phone", "Work laptop"}
    asked = stepup.method_challenge(uid, "webauthn")
    assert asked.options is not None
    left = stepup.remove_passkey(uid, first_id, second.get(asked.options))
    assert left.passkeys is not None and [p.name for p in left.passkeys] == ["Work laptop"]
    login = stepup.challenge(uid, "webauthn")
    assert login.options is not None
    assert stepup.verify(uid, "webauthn", second.get(login.options)).valid


def test_recovery_for_a_locked_out_user(stepup: StepUp) -> None:
    uid = stepup.create_user(email()).id
    with pytest.raises(NotFound):
        stepup.recovery(uid)
    filed = stepup.file_recovery(uid, "Lost my phone; no backup codes.", channel="phone",
                                 phone="+44 20 7946 0018", best_time="after 6 pm",
                                 end_user=JANE)
    assert filed.status == "requested" and filed.created_at.tzinfo is not None
    assert stepup.recovery(uid) == filed
    with pytest.raises(RecoveryAlreadyOpen):
        stepup.file_recovery(uid, "Again.", channel="email")
    with pytest.raises(ValidationError) as bad:
        stepup.file_recovery(stepup.create_user(email()).id, "No number.", channel="phone")
    assert bad.value.field == "contact.phone"


def _has_webhook_routes(server: Server) -> bool:
    paths = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()["paths"]
    return {"/api/v1/webhooks/test", "/api/v1/webhooks/deliveries",
            "/api/v1/webhooks/deliveries/{delivery_id}/redeliver"} <= set(paths)


def _delivery(stepup: StepUp, delivery_id: str, until: Callable[[WebhookDelivery], bool],
              seconds: float = 20) -> WebhookDelivery:
    """The delivery once ``until`` holds (StepUp's sender polls every 2 s)."""
    deadline = time.monotonic() + seconds
    while True:
        found = {d.id: d for d in stepup.webhook_deliveries(limit=100).deliveries}
        if until(found[delivery_id]) or time.monotonic() > deadline:
            return found[delivery_id]
        time.sleep(0.3)


def test_webhooks(stepup: StepUp, server: Server,
                  stepup_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    if not _has_webhook_routes(server):
        pytest.skip("this StepUp has no /api/v1/webhooks routes yet")
    receiver = StandIn(Answer(500), Answer(204))  # the first delivery fails
    with receiver.running() as url:
        stepup_cli("app", "set", "default", "--webhook-url", f"{url}/hooks/stepup",
                   "--webhook-secret", "a-test-secret-of-32-characters!!")
        try:
            sent = stepup.test_webhook(end_user=JANE)
            assert sent.event == "webhook.test" and sent.url == f"{url}/hooks/stepup"
            first = _delivery(stepup, sent.id, lambda d: d.attempts >= 1)
            assert first.attempts == 1 and first.last_error and receiver.seen
            assert receiver.seen[0].headers["StepUp-Event-Id"] == sent.id
            assert receiver.seen[0].headers["StepUp-Signature"].startswith("t=")
            again = stepup.redeliver_webhook(sent.id)
            assert again.id == sent.id and again.status == "pending" and again.attempts == 0
            done = _delivery(stepup, sent.id, lambda d: d.status == "delivered")
            assert done.status == "delivered" and done.delivered_at is not None
            page = stepup.webhook_deliveries(limit=1, status="delivered")
            assert [d.status for d in page.deliveries] == ["delivered"]
        finally:
            stepup_cli("app", "set", "default", "--webhook-url", "")
    with pytest.raises(WebhookNotConfigured):
        stepup.test_webhook()
    with pytest.raises(NotFound):
        stepup.redeliver_webhook("0" * 32)


async def test_the_async_client_covers_the_lifecycle(astepup: AsyncStepUp) -> None:
    made = await astepup.create_user(email(), external_id=f"ext-{secrets.token_hex(6)}",
                                     end_user=JANE)
    assert (await astepup.get_user(made.id)).id == made.id
    assert await astepup.find_user(external_id=made.external_id) is not None
    seen = [u.id async for u in astepup.iter_users(limit=50)]
    assert made.id in seen
    events = [e async for e in astepup.iter_user_events(made.id)]
    assert any(e.ip == "203.0.113.7" for e in events)
    await astepup.delete_user(made.id)
    with pytest.raises(NotFound):
        await astepup.get_user(made.id)
