"""Authenticator app codes (TOTP, RFC 6238): its logic is in method.py, its settings in
settings.py, its set-up page in templates/totp/setup.html."""

from __future__ import annotations

from pathlib import Path

from stepup.methods.base import N_, Descriptor
from stepup.methods.totp.method import (
    DIGESTS,
    DIGITS,
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
    qr_svg,
    seed_bytes,
    step_minutes,
    time_step,
)

DESCRIPTOR = Descriptor(
    type="totp", order=10,
    name=N_("Authenticator app"), notice_name=N_("Authenticator app"),
    blurb=N_("Six-digit codes made by an app on your phone (Google Authenticator, "
             "Microsoft Authenticator and others)."),
    templates=Path(__file__).parent / "templates",
)
METHOD = TotpMethod()

__all__ = ["DESCRIPTOR", "DIGESTS", "DIGITS", "METHOD", "STEP_SECONDS", "TotpMethod",
           "TotpSetup", "_aad", "code_at", "drift_minutes", "drifted_step", "group_secret",
           "hotp", "match_step", "new_secret", "provisioning_uri", "qr_svg", "seed_bytes",
           "step_minutes", "time_step"]
