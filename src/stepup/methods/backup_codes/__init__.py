"""Backup codes: ten printable single-use codes, the fallback for any login method."""

from __future__ import annotations

from pathlib import Path

from stepup.methods.backup_codes.method import BackupCodesMethod
from stepup.methods.base import N_, Descriptor, InputHints

DESCRIPTOR = Descriptor(
    type="backup_codes", order=50,
    name=N_("Backup codes"), notice_name=N_("Backup codes"),
    blurb=N_("Ten single-use codes to print and keep in a safe place, for when your other "
             "methods are out of reach."),
    login_fallback=True, proof_label=N_("Backup code"),
    disable_intro=N_("Enter one of your backup codes, and then click Disable. All your "
                     "backup codes will stop working."),
    code_hint=N_("10 letters and digits, for example abcde-12345. Each code works once."),
    hints=InputHints(inputmode="text", maxlength=24, autocapitalize=False),
    templates=Path(__file__).parent / "templates",
)
METHOD = BackupCodesMethod()

__all__ = ["DESCRIPTOR", "METHOD", "BackupCodesMethod"]
