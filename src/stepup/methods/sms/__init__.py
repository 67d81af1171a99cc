"""Security codes sent by SMS (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import sms_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="sms", order=20,
    name=N_("SMS"), notice_name=N_("SMS codes"),
    blurb=N_("Security codes sent to your mobile phone by SMS."),
    sends_codes=True, message_format="text", channel_name=N_("SMS codes"),
    channel_word="SMS", channel_label="SMS",
    destination="phone", verifies_phone=True,
    code_hint=N_("The 6-digit code from the SMS we sent you."),
    provider=sms_provider, billed=True,
    setup_intro=N_("Enter your mobile phone number and your PIN, and then click Send. We will "
                   "send a security code to this number."),
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable SMS codes"),
        "disable": N_("Disable SMS codes"),
        "enabled": N_("SMS codes are enabled."),
        "disabled": N_("SMS codes are disabled."),
        "switched": N_("The protection settings of SMS codes were saved."),
        "notice_enabled": N_("SMS codes were enabled on your account."),
        "notice_disabled": N_("SMS codes were disabled on your account."),
        "notice_switched": N_("Protection settings changed for SMS codes. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("SMS codes are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for a code sent by SMS when you "
                        "confirm this operation."),
        "switch_off": N_("A code sent by SMS will no longer be asked for on this operation."),
        "to_enable": N_("to enable SMS codes"),
        "to_manage": N_("to change or disable SMS codes"),
    },
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
