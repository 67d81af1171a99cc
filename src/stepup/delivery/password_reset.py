"""The "Forgot password?" e-mail: the single-use link that sets a new password.

It goes through the security notices' queue (services/notifications.py sends it), so it
is sent by the background sender and retried like a notice; it is queued after the
request that asked for it has answered (services/account_security.py), so that answer
takes the same time whether or not the address has an account. The link is dropped
from the queued row once the message is out.
"""

from __future__ import annotations

from html import escape
from typing import Any

from stepup.delivery.base import OutgoingMessage
from stepup.i18n import gettext

RESET_LINK = "password.reset_link"


def reset_link_message(*, to: str, language: str, issuer: str, data: dict[str, Any]
                       ) -> OutgoingMessage:
    _ = lambda m: gettext(language, m)  # noqa: E731
    url = str(data["reset_url"])
    values = {"issuer": issuer, "minutes": int(data.get("minutes") or 30)}
    subject = _("%(issuer)s: reset your password") % values
    intro = _("Someone asked to reset the password of your %(issuer)s account. To choose "
              "a new password, open this link:") % values
    valid = _("The link works once, for %(minutes)s minutes. After the reset every session "
              "is logged out, and your second factor is still asked at the next login.") % (
        values)
    ignore = _("If you did not ask for this, ignore this message: your password stays as "
               "it is.")
    text = f"{intro}\n\n{url}\n\n{valid}\n\n{ignore}\n"
    html = (f"<p>{escape(intro)}</p><p><a href=\"{escape(url)}\">{escape(url)}</a></p>"
            f"<p>{escape(valid)}</p><p>{escape(ignore)}</p>")
    return OutgoingMessage("email", to, text, subject=subject, html=html, language=language,
                           purpose=RESET_LINK)
