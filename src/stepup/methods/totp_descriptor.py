"""The authenticator app's descriptor. It joins ``methods/totp/`` once that module
becomes a package (it is kept apart only while methods/totp.py is being edited)."""

from __future__ import annotations

from stepup.methods.base import N_, Descriptor

DESCRIPTOR = Descriptor(
    type="totp", order=10,
    name=N_("Authenticator app"), notice_name=N_("Authenticator app"),
    blurb=N_("Six-digit codes made by an app on your phone (Google Authenticator, "
             "Microsoft Authenticator and others)."),
)
