"""Notices to the operator (``STEPUP_OPERATOR_EMAIL``), not to a user: the hourly budget
of billed codes (SMS, WhatsApp, …) nearly spent.

They go through the security notices' queue (a ``notification_queue`` row without a
user, written in the transaction that crossed the threshold), so they are retried like
any notice and sent once however many workers run. Operators read them in English, like
the logs.
"""

from __future__ import annotations

from typing import Any

from stepup.delivery.base import OutgoingMessage
from stepup.delivery.messages import billed_channels

BUDGET_KIND = "operator.sms_budget"
KINDS = frozenset({BUDGET_KIND})


def operator_message(*, kind: str, to: str, issuer: str, data: dict[str, Any]
                     ) -> OutgoingMessage:
    if kind != BUDGET_KIND:
        raise KeyError(f"no text for the operator notice kind {kind!r}")
    used, budget = int(data["used"]), int(data["budget"])
    channels = billed_channels()
    subject = f"{issuer}: {used * 100 // budget} % of the hourly budget of billed codes used"
    text = (f"{used} of the {budget} codes that {issuer} may send by {channels} in the "
            f"hour from {data['window']} (STEPUP_SMS_BUDGET_PER_HOUR) have been sent.\n\n"
            f"At the budget, further codes by {channels} are refused (send_cap_reached) "
            "until the hour ends. If this traffic is not expected, it may be SMS pumping: "
            "look at which apps and countries the latest codes went to, and consider "
            "STEPUP_PHONE_COUNTRIES. If it is expected, raise the budget.\n")
    return OutgoingMessage("email", to, text, subject=subject, language="en", purpose=kind)
