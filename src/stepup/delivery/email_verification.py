"""The message that verifies the account e-mail: a 6-digit code for the page that asks
for it, and a link for a click — either one proves the address is the user's."""

from __future__ import annotations

from html import escape

from stepup.delivery.base import OutgoingMessage
from stepup.i18n import gettext


def verification_message(*, to: str, code: str, link: str, language: str, issuer: str,
                         hours: int, reference: str | None = None) -> OutgoingMessage:
    _ = lambda m: gettext(language, m)  # noqa: E731
    values = {"issuer": issuer, "code": code, "hours": hours}
    subject = _("%(issuer)s: verify your e-mail address") % values
    intro = _("Verify this e-mail address for your %(issuer)s account: open the link "
              "below, or enter the code %(code)s on the page that asks for it.") % values
    why = _("Until it is verified, security codes for withdrawals are not sent to this "
            "address.")
    expires = _("The link and the code work once and expire in %(hours)s hours.") % values
    ignore = _("If you did not create this account, ignore this message: nothing will "
               "happen.")
    text = f"{intro}\n\n    {code}\n\n{link}\n\n{why}\n{expires}\n\n{ignore}\n"
    html = (f"<p>{escape(intro)}</p><p><strong style=\"font-size:1.6em;letter-spacing:.2em\">"
            f"{escape(code)}</strong></p><p><a href=\"{escape(link)}\">{escape(link)}</a></p>"
            f"<p>{escape(why)} {escape(expires)}</p><p>{escape(ignore)}</p>")
    return OutgoingMessage("email", to, text, subject=subject, html=html, code=code,
                           language=language, purpose="verify:email", reference=reference,
                           ttl_seconds=hours * 3600)
