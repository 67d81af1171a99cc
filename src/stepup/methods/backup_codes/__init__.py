"""Backup codes: ten printable single-use codes, the fallback for any login method.

method.py holds its logic, its ``DESCRIPTOR`` and ``METHOD``; settings.py its settings;
templates/backup_codes/ its pages. This module stays light and loads method.py when one
of its names is first used: ``config`` imports ``settings`` from this package while it is
being built, and reading the settings must not pull in the method — nor config back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepup.methods.backup_codes.method import DESCRIPTOR, METHOD, BackupCodesMethod

__all__ = ["DESCRIPTOR", "METHOD", "BackupCodesMethod"]


def __getattr__(name: str) -> Any:
    # PEP 562: method.py is loaded the first time one of its names is asked for.
    return getattr(importlib.import_module(f"{__name__}.method"), name)
