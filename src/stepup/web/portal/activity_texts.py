"""What the activity page says about each event: one whole sentence per kind of event
and, where it matters, per situation — what a code or the PIN was for (logging in,
confirming a withdrawal, setting up a method…), how a login passed, which field of the
account changed. Never a sentence glued from parts: each variant is its own catalogue
entry, so a translation can say it in its own order.

:data:`TEXTS` maps every audit event kind that can be written for an account (the
services' ``audit.record`` calls; tests/unit/test_activity_texts.py finds them in the
code and fails on one without a text) to its sentences by situation; ``""`` is the
sentence when nothing more specific applies.
"""

from __future__ import annotations

from collections.abc import Mapping

from stepup.domain.policy import LOGIN, WITHDRAWAL, Purpose
from stepup.services.account_security import PIN_PURPOSE
from stepup.services.activity import ActivityEvent
from stepup.web.portal.render import N_

# What a code was asked for: a whole purpose ("verify:email", "account:pin"), else the
# first part of one ("login", "enroll:sms", "manage:totp", "add:webauthn"); a purpose
# "operation:<id>" is told by the operation's type. tests/unit/test_activity_texts.py
# finds every purpose the code can issue and fails on one without a situation here.
PURPOSE_SITUATIONS = {
    Purpose.verify_email().value: "verify_email",
    PIN_PURPOSE.value: "pin_change",
    LOGIN: LOGIN,
    "enroll": "enroll",
    "add": "enroll",
    "manage": "manage",
}

FOR_PURPOSE = {
    LOGIN: N_("Security code sent for logging in"),
    WITHDRAWAL: N_("Security code sent for confirming a withdrawal"),
    "operation": N_("Security code sent for confirming the operation “%(operation)s”"),
    "enroll": N_("Security code sent for setting up an authentication method"),
    "manage": N_("Security code sent for changing an authentication method"),
    "verify_email": N_("Security code sent to verify your e-mail address"),
    "pin_change": N_("Security code sent to change your PIN"),
    "": N_("A security code was sent"),
}

TEXTS: dict[str, Mapping[str, str]] = {
    "account.created": {"": N_("Account created")},
    "account.email_verified": {"": N_("E-mail address verified")},
    "account.updated": {
        "email": N_("Account e-mail address changed"),
        "language": N_("Language of the pages and messages changed"),
        "pin": N_("PIN changed"),
        "external_id": N_("Link of the account to the client portal changed"),
        "": N_("Account details changed"),
    },
    "account.deleted": {"": N_("Account deleted")},
    "account.locked": {"": N_("Account locked for a while after too many wrong attempts")},
    "account.unlocked": {"": N_("Account unlocked by support")},
    "support.phone_viewed": {"": N_("Support looked up your phone number to call you back")},
    "account.password_changed": {"": N_("Password changed")},
    "account.password_reset": {"": N_("Password reset with a link sent by e-mail")},
    "account.pin_changed": {"": N_("PIN changed")},
    "password.check_failed": {
        "": N_("Wrong password entered while changing the security settings")},
    "password.reset_requested": {"": N_("A link to reset the password was requested")},
    "login.succeeded": {
        "password": N_("Logged in with the password"),
        "remembered_device": N_("Logged in on a remembered device, without a security code"),
        "": N_("Logged in with the password and a security code"),
    },
    "login.password_passed": {"": N_("Password accepted; a security code was asked for")},
    "login.password_failed": {"": N_("Wrong password entered while logging in")},
    "login.refused": {
        "no_second_factor": N_("Login refused: no authentication method protects login"),
        "": N_("Login refused"),
    },
    "code.sent": FOR_PURPOSE,
    "code.verified": {
        LOGIN: N_("Security code accepted for logging in"),
        WITHDRAWAL: N_("Security code accepted for confirming a withdrawal"),
        "operation": N_("Security code accepted for confirming the operation "
                        "“%(operation)s”"),
        "enroll": N_("Security code accepted for setting up an authentication method"),
        "manage": N_("Security code accepted for changing an authentication method"),
        "verify_email": N_("Security code accepted for verifying your e-mail address"),
        "pin_change": N_("Security code accepted for changing your PIN"),
        "": N_("A security code was accepted"),
    },
    "code.failed": {
        LOGIN: N_("Wrong security code entered while logging in"),
        WITHDRAWAL: N_("Wrong security code entered while confirming a withdrawal"),
        "operation": N_("Wrong security code entered while confirming the operation "
                        "“%(operation)s”"),
        "enroll": N_("Wrong security code entered while setting up an authentication "
                     "method"),
        "manage": N_("Wrong security code entered while changing an authentication method"),
        "verify_email": N_("Wrong security code entered while verifying your e-mail "
                           "address"),
        "pin_change": N_("Wrong security code entered while changing your PIN"),
        "": N_("Wrong security code entered"),
    },
    "code.replayed": {
        LOGIN: N_("A security code already used was entered again while logging in"),
        WITHDRAWAL: N_("A security code already used was entered again while confirming "
                       "a withdrawal"),
        "operation": N_("A security code already used was entered again while confirming "
                        "the operation “%(operation)s”"),
        "enroll": N_("A security code already used was entered again while setting up an "
                     "authentication method"),
        "manage": N_("A security code already used was entered again while changing an "
                     "authentication method"),
        "verify_email": N_("A security code already used was entered again while verifying "
                           "your e-mail address"),
        "pin_change": N_("A security code already used was entered again while changing "
                         "your PIN"),
        "": N_("A security code already used was entered again"),
    },
    "delivery.failed": {
        LOGIN: N_("A security code for logging in could not be sent"),
        WITHDRAWAL: N_("A security code for confirming a withdrawal could not be sent"),
        "operation": N_("A security code for confirming the operation “%(operation)s” "
                        "could not be sent"),
        "enroll": N_("A security code for setting up an authentication method could not "
                     "be sent"),
        "manage": N_("A security code for changing an authentication method could not be "
                     "sent"),
        "verify_email": N_("A security code to verify your e-mail address could not be "
                           "sent"),
        "pin_change": N_("A security code to change your PIN could not be sent"),
        "": N_("Sending a security code failed"),
    },
    "pin.failed": {
        LOGIN: N_("Wrong PIN entered while logging in"),
        WITHDRAWAL: N_("Wrong PIN entered while confirming a withdrawal"),
        "operation": N_("Wrong PIN entered while confirming the operation “%(operation)s”"),
        "enroll": N_("Wrong PIN entered while setting up an authentication method"),
        "manage": N_("Wrong PIN entered while changing an authentication method"),
        "": N_("Wrong PIN entered"),
    },
    "pin.locked": {"": N_("PIN locked for a while after too many wrong attempts")},
    "method.locked": {"": N_("Authentication method locked for a while after too many "
                             "wrong codes")},
    "method.enrollment_started": {"": N_("Set-up of an authentication method started")},
    "method.enabled": {"": N_("Authentication method enabled")},
    "method.disabled": {"": N_("Authentication method disabled")},
    "method.protection_switched": {"": N_("What an authentication method protects was "
                                          "changed")},
    "passkey.added": {"": N_("Passkey added")},
    "passkey.removed": {"": N_("Passkey removed")},
    "passkey.renamed": {"": N_("Passkey renamed")},
    "backup_codes.regenerated": {"": N_("New backup codes created: the old ones no longer "
                                        "work")},
    "device.remembered": {"": N_("Device remembered: it logs in without a security code")},
    "device.forgotten": {
        "user": N_("Remembered devices forgotten"),
        "": N_("Remembered devices forgotten after a change of authentication methods"),
    },
    "operation.created": {
        WITHDRAWAL: N_("Withdrawal started"),
        "operation": N_("Operation “%(operation)s” started"),
        "": N_("Operation started"),
    },
    "operation.pin_passed": {
        WITHDRAWAL: N_("PIN accepted for a withdrawal"),
        "operation": N_("PIN accepted for the operation “%(operation)s”"),
        "": N_("PIN accepted for an operation"),
    },
    "operation.confirmed": {
        WITHDRAWAL: N_("Withdrawal confirmed"),
        "operation": N_("Operation “%(operation)s” confirmed"),
        "": N_("Operation confirmed"),
    },
    "recovery.requested": {"": N_("Reset of two-factor authentication requested")},
    "recovery.checked": {"": N_("Support recorded the identity checks of the reset "
                                "request")},
    "recovery.self_approval_refused": {"": N_("The reset request waits for a second member "
                                              "of support to approve it")},
    "recovery.approved": {"": N_("Reset of two-factor authentication approved")},
    "recovery.rejected": {"": N_("Reset of two-factor authentication rejected")},
    "recovery.cancelled": {"": N_("Reset of two-factor authentication cancelled")},
    "recovery.completed": {"": N_("Two-factor authentication reset")},
    "notice.failed": {"": N_("A security notice could not be delivered")},
}

#: The kinds whose sentence depends on what a code or the PIN was for.
PURPOSE_KINDS = frozenset({"code.sent", "code.verified", "code.failed", "code.replayed",
                           "delivery.failed", "pin.failed"})
OPERATION_KINDS = frozenset({"operation.created", "operation.pin_passed",
                             "operation.confirmed"})


def _operation_situation(event: ActivityEvent) -> str:
    if event.operation_type is None:
        return ""
    return WITHDRAWAL if event.operation_type == WITHDRAWAL else "operation"


def situation(event: ActivityEvent) -> str:
    """Which of the kind's sentences applies ("" when none more specific does)."""
    facts = event.facts
    if event.event in PURPOSE_KINDS:
        if event.operation_type is not None:
            return _operation_situation(event)
        purpose = facts.get("purpose")
        if isinstance(purpose, str):
            return PURPOSE_SITUATIONS.get(purpose) or PURPOSE_SITUATIONS.get(
                purpose.partition(":")[0], "")
        # A wrong PIN names the method being set up (or "operation:<type>").
        return "enroll" if event.event == "pin.failed" and facts.get("method") else ""
    if event.event in OPERATION_KINDS:
        return _operation_situation(event)
    if event.event == "login.succeeded":
        second = facts.get("second_factor")
        return "password" if not second else (
            "remembered_device" if second == "remembered_device" else "")
    if event.event == "account.updated":
        return event.fields[0] if len(event.fields) == 1 else ""
    if event.event in ("login.refused", "device.forgotten"):
        return str(facts.get("reason") or "")
    return ""


def sentence(event: ActivityEvent) -> str | None:
    """The untranslated sentence (a catalogue id) for the event, or None for a kind no
    sentence was written for."""
    texts = TEXTS.get(event.event)
    if texts is None:
        return None
    return texts.get(situation(event)) or texts[""]


def method_of(event: ActivityEvent) -> str | None:
    """The method the event is about, if it names one (a wrong PIN for an operation
    names the operation instead; a login on a remembered device, no method)."""
    method = event.facts.get("method")
    if event.event == "login.succeeded":
        method = event.facts.get("second_factor")
        if method == "remembered_device":
            return None
    if not isinstance(method, str) or method.startswith("operation:") or method == "pin":
        return None
    return method
