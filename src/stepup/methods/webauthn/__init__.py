"""Passkeys (WebAuthn): one method, any number of passkeys, each answering a browser
ceremony bound to one purpose.

method.py holds its logic, its ``DESCRIPTOR`` and ``METHOD``; ceremony.py the parts of a
ceremony that hold no state (the relying party, a credential's sealing, reading an
answer); settings.py its settings; templates/webauthn/ its pages. This module stays
light and loads method.py when one of its names is first used: ``config`` imports
``settings`` from this package while it is being built, and reading the settings must
not pull in the method — nor config back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepup.methods.webauthn.method import (
        ADD,
        CHANNEL,
        DESCRIPTOR,
        METHOD,
        WebAuthnMethod,
    )

__all__ = ["ADD", "CHANNEL", "DESCRIPTOR", "METHOD", "WebAuthnMethod"]


def __getattr__(name: str) -> Any:
    # PEP 562: method.py is loaded the first time one of its names is asked for. Any
    # other name is not method.py's to answer: ``from stepup.methods.webauthn import
    # ceremony`` (in method.py, while it loads) then finds the submodule directly.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.method"), name)
