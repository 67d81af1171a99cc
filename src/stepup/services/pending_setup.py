"""Showing a pending enrollment's set-up again (the TOTP key and QR code after a wrong
code), so that a typo does not start the set-up over with a new secret.

Nothing changes and nothing is audited here: the wrong code that led here was counted
and audited by ``methods.confirm_enrollment`` as any wrong code is. The secret is read
from the sealed row — never taken from the browser — and shown only to the signed-in
owner of a *pending* enrollment who sends the set-up's ticket (methods/base.py,
``ShowsSetupAgain``): an enabled method never shows its secret again.
"""

from __future__ import annotations

from stepup.domain.policy import MethodStatus
from stepup.methods import registry
from stepup.methods.base import EnrollmentBody, ShowsSetupAgain
from stepup.services.runtime import Runtime, user_or_not_found
from stepup.store import queries


async def show_again(rt: Runtime, user_id: str, method_type: str, ticket: str
                     ) -> EnrollmentBody | None:
    """The set-up of the user's pending enrollment of ``method_type`` as it was shown,
    else None (no such ability, nothing pending, or not the set-up's ticket)."""
    method = registry.get(method_type)
    if not ticket or not isinstance(method, ShowsSetupAgain):
        return None
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        row = await queries.get_method(db, user.id, method_type)
        if row is None or row.status != MethodStatus.PENDING:
            return None
        return await method.setup_again(rt.method_context(db), user, row, ticket)
