"""Which methods exist: one package per method, listed here once.

Adding a method adds its package (``methods/<type>/``: its logic, its ``DESCRIPTOR``,
its ``METHOD``, its templates, its ``settings.py`` composed in ``config.Settings``) and
one line here; the services, the pages, the API, delivery and the notices loop over what
this module lists and never ask "which method is this?".
"""

from __future__ import annotations

from stepup.domain.errors import NotFound
from stepup.methods import backup_codes, email, sms, telegram, totp, webauthn, whatsapp
from stepup.methods.base import Descriptor, Method

_PACKAGES: tuple[tuple[Descriptor, Method], ...] = (
    (totp.DESCRIPTOR, totp.METHOD),
    (sms.DESCRIPTOR, sms.METHOD),
    (email.DESCRIPTOR, email.METHOD),
    (whatsapp.DESCRIPTOR, whatsapp.METHOD),
    (telegram.DESCRIPTOR, telegram.METHOD),
    (backup_codes.DESCRIPTOR, backup_codes.METHOD),
    (webauthn.DESCRIPTOR, webauthn.METHOD),
)
_DESCRIPTORS: dict[str, Descriptor] = {
    d.type: d for d, _m in sorted(_PACKAGES, key=lambda p: p[0].order)}
_REGISTERED: dict[str, Method] = {d.type: m for d, m in _PACKAGES}


def get(method_type: str) -> Method:
    method = _REGISTERED.get(method_type)
    if method is None:
        raise NotFound(f"There is no method '{method_type}'.")
    return method


def find(method_type: str) -> Method | None:
    """The method, or None where ``get`` would refuse it."""
    return _REGISTERED.get(method_type)


def available() -> list[Method]:
    """Every method, in the order of the Authentication methods page."""
    return [_REGISTERED[t] for t in _DESCRIPTORS]


def is_available(method_type: str) -> bool:
    return method_type in _REGISTERED


def descriptor(method_type: str) -> Descriptor | None:
    """What the layers above know of a method: names, flags, destination, order."""
    return _DESCRIPTORS.get(method_type)


def descriptors() -> list[Descriptor]:
    """Every method's descriptor, in the order of the Authentication methods page."""
    return list(_DESCRIPTORS.values())


def types() -> tuple[str, ...]:
    return tuple(_DESCRIPTORS)


def sending_to(destination: str) -> str | None:
    """The type of the first method that sends codes to this kind of destination
    ("email": the account e-mail's channel, for the withdrawal fallback)."""
    return next((d.type for d in _DESCRIPTORS.values()
                 if d.sends_codes and d.destination == destination), None)


def phone_verifier() -> str | None:
    """The type of the method whose enrollment verifies the account's phone (SMS)."""
    return next((d.type for d in _DESCRIPTORS.values() if d.verifies_phone), None)


def sending_codes() -> list[Descriptor]:
    """The methods whose challenge sends a code by a channel (out-of-band)."""
    return [d for d in _DESCRIPTORS.values() if d.sends_codes]
