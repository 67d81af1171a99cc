"""The calls on a user's methods, their second factor and their operations: one
function per endpoint, building a :class:`~stepup_client._core.Call` that both clients
send (the user lifecycle, passkeys, recovery and webhooks are in ``_lifecycle``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from stepup_client._core import Call, method_path, seg, user_path, without_none
from stepup_client._json import MalformedAnswer
from stepup_client.models import (
    Challenge,
    Enrollment,
    Method,
    Operation,
    User,
    Verification,
)


def create_user(email: str, external_id: str | None, language: str | None, pin: str | None,
                password: str | None, email_verified: bool | None = None) -> Call[User]:
    return Call("POST", "users", lambda r, d: User.from_json(d, created=r.status_code == 201),
                without_none(email=email, external_id=external_id, language=language,
                             pin=pin, password=password, email_verified=email_verified))


def methods(user_id: str) -> Call[list[Method]]:
    def parse(_: httpx.Response, data: Any) -> list[Method]:
        items = data.get("methods") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise MalformedAnswer("methods")
        return [Method.from_json(m) for m in items]

    return Call("GET", f"{user_path(user_id)}/methods", parse)


def _protects(call: str, protects: Mapping[str, bool] | None) -> dict[str, bool] | None:
    if protects is None:
        return None
    if not all(isinstance(v, bool) for v in protects.values()):
        raise TypeError(f"{call}() takes True or False for each operation in protects")
    return dict(protects)


def enroll(user_id: str, method: str, phone: str | None, email: str | None,
           pin: str | None, protects: Mapping[str, bool] | None = None) -> Call[Enrollment]:
    return Call("POST", f"{method_path(user_id, method)}/enrollment",
                lambda _, d: Enrollment.from_json(d, method=method),
                without_none(phone=phone, email=email, pin=pin,
                             protects=_protects("enroll", protects)))


def confirm_enrollment(user_id: str, method: str, code: str,
                       protects: Mapping[str, bool] | None = None) -> Call[Method]:
    return Call("POST", f"{method_path(user_id, method)}/enrollment/confirm",
                lambda _, d: Method.from_json(d),
                without_none(code=code, protects=_protects("confirm_enrollment", protects)))


def method_challenge(user_id: str, method: str) -> Call[Challenge]:
    return Call("POST", f"{method_path(user_id, method)}/challenge",
                lambda _, d: Challenge.from_json(d, method=method), {})


def switch(user_id: str, method: str, code: str, protects: Mapping[str, bool]) -> Call[Method]:
    if not protects:
        raise ValueError("switch() needs at least one operation, e.g. withdrawal=True")
    if not all(isinstance(v, bool) for v in protects.values()):
        raise TypeError("switch() takes True or False for each operation")
    return Call("PATCH", method_path(user_id, method), lambda _, d: Method.from_json(d),
                {"protects": dict(protects), "code": code})


def disable(user_id: str, method: str, code: str) -> Call[Method]:
    return Call("POST", f"{method_path(user_id, method)}/disable",
                lambda _, d: Method.from_json(d), {"code": code})


def regenerate_backup_codes(user_id: str, code: str | None) -> Call[Enrollment]:
    return Call("POST", f"{method_path(user_id, 'backup_codes')}/regenerate",
                lambda _, d: Enrollment.from_json(d, method="backup_codes"),
                without_none(code=code))


def challenge(user_id: str, method: str, purpose: str) -> Call[Challenge]:
    return Call("POST", f"{user_path(user_id)}/challenge",
                lambda _, d: Challenge.from_json(d, method=method),
                {"method": method, "purpose": purpose})


def verify(user_id: str, method: str, code: str, purpose: str) -> Call[Verification]:
    return Call("POST", f"{user_path(user_id)}/verify", lambda _, d: Verification.from_json(d),
                {"method": method, "code": code, "purpose": purpose})


def create_operation(user_id: str, type: str, details: Mapping[str, str]) -> Call[Operation]:
    return Call("POST", f"{user_path(user_id)}/operations",
                lambda _, d: Operation.from_json(d), {"type": type, "details": dict(details)})


def _operation(user_id: str, operation_id: str) -> str:
    return f"{user_path(user_id)}/operations/{seg(operation_id, 'operation_id')}"


def submit_pin(user_id: str, operation_id: str, pin: str) -> Call[Operation]:
    return Call("POST", f"{_operation(user_id, operation_id)}/pin",
                lambda _, d: Operation.from_json(d), {"pin": pin})


def operation(user_id: str, operation_id: str) -> Call[Operation]:
    return Call("GET", _operation(user_id, operation_id), lambda _, d: Operation.from_json(d))
