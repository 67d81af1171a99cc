"""The authenticator app's settings (``STEPUP_TOTP_*``), composed into ``config.Settings``.

This module imports nothing of StepUp: ``config`` imports it while it is being built.
"""

from __future__ import annotations

from pydantic import BaseModel


class TotpSettings(BaseModel):
    # Time steps accepted either side of the current one (0: only the current 30 s).
    totp_window: int = 1
    # How far (in steps) a wrong code is looked for to tell the user their clock is off.
    totp_drift_steps: int = 20  # ±10 minutes at 30 s steps

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe in production (none today)."""
        return []
