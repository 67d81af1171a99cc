"""The calls of a user's lifecycle (read, find, list, change, delete, unlock, events),
passkeys, lock-out recovery and the app's webhooks: one function per endpoint, building
a :class:`~stepup_client._core.Call` that both clients send."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, Final

from stepup_client._core import Call, method_path, seg, user_path, without_none
from stepup_client.models import Enrollment, Method, User, UsersPage
from stepup_client.records import (
    EventsPage,
    Recovery,
    Unlocked,
    WebhookDeliveries,
    WebhookDelivery,
)


class Unset(enum.Enum):
    """The default of an argument that ``None`` would change (``external_id=None``
    removes the external id)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


def _limit(limit: int | None) -> int | None:
    # The upper bound is the server's to say (200 users or events, 100 deliveries).
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError("limit must be a whole number, 1 or more")
    return limit


# --- users ------------------------------------------------------------------------------

def get_user(user_id: str) -> Call[User]:
    return Call("GET", user_path(user_id), lambda _, d: User.from_json(d))


def find_user(email: str | None, external_id: str | None) -> Call[User | None]:
    if email is None and external_id is None:
        raise ValueError("find_user() needs email= or external_id= (or both)")

    def parse(_: Any, data: Any) -> User | None:
        users = UsersPage.from_json(data).users
        return users[0] if users else None

    return Call("GET", "users", parse,
                params=without_none(email=email, external_id=external_id))


def list_users(limit: int | None, cursor: str | None) -> Call[UsersPage]:
    return Call("GET", "users", lambda _, d: UsersPage.from_json(d),
                params={"limit": _limit(limit), "cursor": cursor})


def update_user(user_id: str, email: str | None, external_id: str | Unset | None,
                language: str | None, pin: str | None, email_verified: bool | None = None
                ) -> Call[User]:
    body: dict[str, Any] = without_none(email=email, language=language, pin=pin,
                                        email_verified=email_verified)
    if external_id is not UNSET:
        body["external_id"] = external_id
    if not body:
        raise ValueError("update_user() needs at least one of email, external_id, "
                         "language, pin, email_verified")
    return Call("PATCH", user_path(user_id), lambda _, d: User.from_json(d), body)


def delete_user(user_id: str) -> Call[None]:
    return Call("DELETE", user_path(user_id), lambda _r, _d: None)


def unlock_user(user_id: str, what: str) -> Call[Unlocked]:
    return Call("POST", f"{user_path(user_id)}/unlock", lambda _, d: Unlocked.from_json(d),
                {"what": what})


def user_events(user_id: str, limit: int | None, cursor: str | None) -> Call[EventsPage]:
    return Call("GET", f"{user_path(user_id)}/events", lambda _, d: EventsPage.from_json(d),
                params={"limit": _limit(limit), "cursor": cursor})


# --- passkeys ---------------------------------------------------------------------------

def _passkeys(user_id: str) -> str:
    return f"{method_path(user_id, 'webauthn')}/passkeys"


def add_passkey(user_id: str, pin: str | None) -> Call[Enrollment]:
    return Call("POST", _passkeys(user_id),
                lambda _, d: Enrollment.from_json(d, method="webauthn"), without_none(pin=pin))


def confirm_passkey(user_id: str, credential: str | Mapping[str, Any],
                    name: str | None) -> Call[Method]:
    code = credential if isinstance(credential, str) else json.dumps(dict(credential))
    return Call("POST", f"{_passkeys(user_id)}/confirm", lambda _, d: Method.from_json(d),
                without_none(code=code, name=name))


def rename_passkey(user_id: str, passkey_id: str, name: str) -> Call[Method]:
    return Call("PATCH", f"{_passkeys(user_id)}/{seg(passkey_id, 'passkey_id')}",
                lambda _, d: Method.from_json(d), {"name": name})


def remove_passkey(user_id: str, passkey_id: str, code: str) -> Call[Method]:
    return Call("POST", f"{_passkeys(user_id)}/{seg(passkey_id, 'passkey_id')}/remove",
                lambda _, d: Method.from_json(d), {"code": code})


# --- recovery ---------------------------------------------------------------------------

def file_recovery(user_id: str, description: str, channel: str, phone: str | None,
                  best_time: str | None) -> Call[Recovery]:
    return Call("POST", f"{user_path(user_id)}/recovery", lambda _, d: Recovery.from_json(d),
                {"description": description,
                 "contact": without_none(channel=channel, phone=phone, best_time=best_time)})


def recovery(user_id: str) -> Call[Recovery]:
    return Call("GET", f"{user_path(user_id)}/recovery", lambda _, d: Recovery.from_json(d))


# --- webhooks ---------------------------------------------------------------------------

def test_webhook() -> Call[WebhookDelivery]:
    return Call("POST", "webhooks/test", lambda _, d: WebhookDelivery.from_json(d), {})


def webhook_deliveries(limit: int | None, cursor: str | None,
                       status: str | None) -> Call[WebhookDeliveries]:
    return Call("GET", "webhooks/deliveries", lambda _, d: WebhookDeliveries.from_json(d),
                params={"limit": _limit(limit), "cursor": cursor, "status": status})


def redeliver_webhook(delivery_id: str) -> Call[WebhookDelivery]:
    return Call("POST", f"webhooks/deliveries/{seg(delivery_id, 'delivery_id')}/redeliver",
                lambda _, d: WebhookDelivery.from_json(d), {})
