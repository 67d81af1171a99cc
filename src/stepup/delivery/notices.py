"""The localised text of every security notice (services/notifications.py sends them).

A notice names the service, says what happened, when and from which IP address (when
known), and what to do if it was not the user. E-mails have a plain-text and an HTML
part; SMS are short and carry no link (a link in an unexpected SMS is what phishing
looks like), so the app's address appears in e-mails only.

The service is the user's app when ``data`` carries ``app_name`` (a portal's user:
services/notifications.py adds it with ``app_url``): its name signs the notice and the
advice sends the user to it, because such a user has no StepUp account or password of
their own. StepUp's own users (app ``portal``) read the texts as they always were.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from stepup import formats
from stepup.delivery.base import OutgoingMessage, subject_line
from stepup.i18n import N_, gettext
from stepup.methods import registry
from stepup.methods.base import sentence

PIN = N_("PIN")  # the notices name the PIN like a method
OPERATION_NAMES = {"login": N_("Login"), "withdrawal": N_("Withdrawal")}


def when_text(value: str | None, language: str = formats.SOURCE) -> str:
    """``2026-11-22T12:00:00+00:00`` → ``2026-11-22 12:00 UTC`` in English, ``22 нояб.
    2026 г., 12:00 UTC`` in Russian (stepup.formats)."""
    return formats.moment(value, language)


def duration_text(_: Callable[[str], str], seconds: int) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return _("%(n)s h") % {"n": seconds // 3600}
    if seconds >= 60:
        return _("%(n)s min") % {"n": seconds // 60}
    return _("%(n)s s") % {"n": seconds}


def _method(_: Callable[[str], str], data: dict[str, Any]) -> str:
    value = str(data.get("method") or "")
    if value == "pin":
        return _(PIN)
    d = registry.descriptor(value)
    return _(d.notice_name) if d is not None else value


def _protects(_: Callable[[str], str], data: dict[str, Any]) -> str:
    after = data.get("after") or {}
    names = [_(OPERATION_NAMES.get(op, op)) for op, on in sorted(after.items()) if on]
    return ", ".join(names) if names else _("nothing")


METHOD_NOTICES = {"method.enabled": "notice_enabled", "method.disabled": "notice_disabled",
                  "method.protection_switched": "notice_switched",
                  "method.locked": "notice_locked"}


def method_notice(_: Callable[[str], str], method_type: str, key: str) -> str:
    """The method's own sentence for a notice, translated, ready for the notice's values
    (``%(method)s`` stays for a method that words no sentence of its own)."""
    text, _generic = sentence(registry.descriptor(method_type), key)
    return _(text)


def what_happened(kind: str, language: str, data: dict[str, Any]) -> str:
    """One sentence: what happened to the account (without the service name)."""
    _ = lambda m: gettext(language, m)  # noqa: E731
    app = data.get("app_name") or ""
    v = {"method": _method(_, data), "protects": _protects(_, data),
         "remaining": data.get("remaining", ""), "device": data.get("device") or "",
         "duration": duration_text(_, int(data.get("seconds") or 0)),
         "effective_at": when_text(data.get("effective_at"), language),
         "name": data.get("name") or "",
         "app": app}
    # A notice about one method is that method's own sentence (its descriptor's).
    own = METHOD_NOTICES.get(kind)
    if own is not None and not (kind == "method.locked" and data.get("method") == "pin"):
        told = method_notice(_, str(data.get("method") or ""), own) % v
        if kind == "method.enabled" and "after" in data:
            # What it protects, as chosen at its set-up.
            told += " " + _("Protected now: %(protects)s.") % v
        return told
    texts = {
        "passkey.added": _("A passkey was added to your account: %(name)s."),
        "passkey.removed": _("A passkey was removed from your account: %(name)s."),
        "backup_codes.regenerated": _("New backup codes were created; the old ones no longer "
                                      "work."),
        "backup_codes.low": (_("A backup code was used. Backup codes left: %(remaining)s. "
                               "Create new ones with %(app)s.") if app else
                             _("A backup code was used. Backup codes left: %(remaining)s. "
                               "Create new ones in Settings → Authentication methods.")),
        "login.new_device": _("Someone logged in to your account from a new device: "
                              "%(device)s."),
        "account.locked": _("Your account was locked for %(duration)s after too many failed "
                            "attempts."),
        "method.locked": _("The PIN is locked for %(duration)s after too many wrong "
                           "attempts."),
        "account.email_changed": _("The e-mail address of your account was changed. "
                                   "Security notices now go to the new address."),
        "account.pin_changed": _("The PIN of your account was changed."),
        "account.password_changed": _("The password of your account was changed. Every "
                                      "other session was logged out."),
        "account.password_reset": _("The password of your account was reset with a link "
                                    "sent to this address. Every session was logged out."),
        "account.email_verified": _("Your e-mail address was verified: codes that "
                                    "confirm withdrawals may now be sent to it."),
        "recovery.requested": _("A request to reset two-factor authentication on your "
                                "account was made."),
        "recovery.approved": _("The request to reset two-factor authentication on your "
                               "account was approved. It takes effect on %(effective_at)s "
                               "unless it is cancelled."),
        "recovery.rejected": _("The request to reset two-factor authentication on your "
                               "account was rejected. Nothing was changed."),
        "recovery.cancelled": _("The request to reset two-factor authentication on your "
                                "account was cancelled. Nothing was changed."),
        "recovery.completed": (_("Two-factor authentication on your account was reset. Log "
                                 "in to %(app)s and set up a sign-in method again.") if app
                               else _("Two-factor authentication on your account was reset. "
                                      "Log in and set up a sign-in method again.")),
    }
    text = texts.get(kind)
    if text is None:
        raise KeyError(f"no text for the notice kind {kind!r}")
    return text % v


def _advice(kind: str, language: str, data: dict[str, Any], *, sms: bool) -> str:
    _ = lambda m: gettext(language, m)  # noqa: E731
    recovery = kind in ("recovery.requested", "recovery.approved")
    link = data.get("cancel_url") if recovery and not sms else None
    app = data.get("app_name")
    if app:
        # A portal's user: no StepUp password to change, no StepUp login to cancel from.
        if link:
            return _("If you did not ask for this, cancel the request at once: %(url)s — "
                     "then contact %(app)s.") % {"url": link, "app": app}
        if recovery:
            return _("Not you? Contact %(app)s at once to stop the request.") % {"app": app}
        if sms:
            return _("Not you? Contact %(app)s at once.") % {"app": app}
        return _("If this was not you, contact %(app)s at once to secure your account.") % {
            "app": app}
    if link:
        return _("If you did not ask for this, cancel the request at once: %(url)s — then "
                 "change your password and contact support.") % {"url": link}
    if recovery:
        return _("Not you? Log in to cancel the request, or contact support.")
    if sms:
        return _("Not you? Change your password and contact support.")
    return _("If this was not you, secure your account: change your password, check your "
             "authentication methods and contact support.")


def notice_message(*, kind: str, channel: str, to: str, language: str, issuer: str,
                   data: dict[str, Any]) -> OutgoingMessage:
    _ = lambda m: gettext(language, m)  # noqa: E731
    app, app_url = data.get("app_name"), data.get("app_url")
    sender = app or issuer
    what = what_happened(kind, language, data)
    at = when_text(data.get("at"), language)
    ip = data.get("ip")
    if channel == "sms":
        where = (_("%(when)s, IP %(ip)s.") if ip else _("%(when)s.")) % {"when": at, "ip": ip}
        body = f"{sender}: {what} {where} {_advice(kind, language, data, sms=True)}"
        return OutgoingMessage(channel, to, body, language=language, purpose=kind)
    subject = _("%(issuer)s security notice: %(what)s") % {"issuer": sender, "what": what}
    subject = subject_line(subject)  # never cut inside a word
    if app and app_url:
        greeting = _("This is a security notice from %(issuer)s (%(url)s).") % {
            "issuer": app, "url": app_url}
    else:
        greeting = _("This is a security notice from %(issuer)s.") % {"issuer": sender}
    facts = [_("When: %(when)s") % {"when": at}]
    if ip:
        facts.append(_("IP address: %(ip)s") % {"ip": ip})
    if data.get("device"):
        facts.append(_("Device: %(device)s") % {"device": data["device"]})
    advice = _advice(kind, language, data, sms=False)
    if app:
        footer = _("You receive this message because it concerns the security of your "
                   "account with %(app)s.") % {"app": app}
    else:
        footer = _("You receive this message because it concerns the security of your "
                   "%(issuer)s account.") % {"issuer": issuer}
    text = "\n\n".join([greeting, what, "\n".join(facts), advice, footer]) + "\n"
    html = (f"<p>{escape(greeting)}</p><p><strong>{escape(what)}</strong></p>"
            f"<p>{'<br>'.join(escape(f) for f in facts)}</p><p>{escape(advice)}</p>"
            f"<p><small>{escape(footer)}</small></p>")
    return OutgoingMessage(channel, to, text, subject=subject, html=html, language=language,
                           purpose=kind)
