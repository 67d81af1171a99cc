"""Which methods exist. Adding a method adds one line here and nothing in the services."""

from __future__ import annotations

from stepup.domain.errors import NotFound
from stepup.domain.policy import METHOD_TYPES
from stepup.methods.backup_codes import BackupCodesMethod
from stepup.methods.base import Method
from stepup.methods.oob import OobMethod
from stepup.methods.totp import TotpMethod
from stepup.methods.webauthn import WebAuthnMethod

_REGISTERED: dict[str, Method] = {
    m.type: m for m in (TotpMethod(), OobMethod("sms"), OobMethod("email"),
                        OobMethod("whatsapp"), BackupCodesMethod(), WebAuthnMethod())
}


def get(method_type: str) -> Method:
    method = _REGISTERED.get(method_type)
    if method is None:
        if method_type in METHOD_TYPES:
            raise NotFound(f"The method '{method_type}' is not available on this server yet.")
        raise NotFound(f"There is no method '{method_type}'.")
    return method


def find(method_type: str) -> Method | None:
    """The method, or None where ``get`` would refuse it."""
    return _REGISTERED.get(method_type)


def available() -> list[Method]:
    return [_REGISTERED[t] for t in METHOD_TYPES if t in _REGISTERED]


def is_available(method_type: str) -> bool:
    return method_type in _REGISTERED
