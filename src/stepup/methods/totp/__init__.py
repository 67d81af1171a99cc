"""Authenticator app codes (TOTP, RFC 6238): method.py holds its logic, its ``DESCRIPTOR``
and ``METHOD``; settings.py its settings; templates/totp/ its set-up page.

This module stays light and loads method.py when one of its names is first used:
``config`` imports ``settings`` from this package while it is being built, and reading
the settings must not pull in the method (pyotp, the store) — nor config back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepup.methods.totp.method import (
        DESCRIPTOR,
        DIGESTS,
        DIGITS,
        METHOD,
        STEP_SECONDS,
        TotpMethod,
        TotpSetup,
        _aad,
        code_at,
        drift_minutes,
        drifted_step,
        group_secret,
        hotp,
        match_step,
        new_secret,
        provisioning_uri,
        secret_groups,
        seed_bytes,
        setup_ticket,
        step_minutes,
        time_step,
    )

__all__ = ["DESCRIPTOR", "DIGESTS", "DIGITS", "METHOD", "STEP_SECONDS", "TotpMethod",
           "TotpSetup", "_aad", "code_at", "drift_minutes", "drifted_step",
           "group_secret", "hotp", "match_step", "new_secret", "provisioning_uri",
           "secret_groups", "seed_bytes", "setup_ticket", "step_minutes", "time_step"]


def __getattr__(name: str) -> Any:
    # PEP 562: method.py is loaded the first time one of its names is asked for.
    return getattr(importlib.import_module(f"{__name__}.method"), name)
