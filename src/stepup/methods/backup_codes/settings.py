"""Backup codes' settings (``STEPUP_BACKUP_CODE*``), composed into ``config.Settings``.

This module imports nothing of StepUp: ``config`` imports it while it is being built.
"""

from __future__ import annotations

from pydantic import BaseModel


class BackupCodeSettings(BaseModel):
    # Codes in a set (enabling the method, or Regenerate).
    backup_code_count: int = 10
    # At this many unused codes or fewer, the user is told to make a new set.
    backup_codes_warn_at: int = 2

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe in production (none today)."""
        return []
