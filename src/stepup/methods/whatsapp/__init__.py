"""Security codes sent on WhatsApp (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import whatsapp_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="whatsapp", order=40,
    name=N_("WhatsApp"), notice_name=N_("WhatsApp codes"),
    blurb=N_("Security codes sent to you on WhatsApp."),
    sends_codes=True, message_format="chat", channel_name=N_("WhatsApp codes"),
    channel_word="WhatsApp",
    channel_label="WhatsApp", destination="phone",
    code_hint=N_("The 6-digit code from the WhatsApp message we sent you."),
    provider=whatsapp_provider, billed=True,
    setup_intro=N_("Enter the mobile phone number you use on WhatsApp and your PIN, and then "
                   "click Send. We will send a security code to this number on WhatsApp."),
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable WhatsApp codes"),
        "disable": N_("Disable WhatsApp codes"),
        "enabled": N_("WhatsApp codes are enabled."),
        "disabled": N_("WhatsApp codes are disabled."),
        "switched": N_("The protection settings of WhatsApp codes were saved."),
        "notice_enabled": N_("WhatsApp codes were enabled on your account."),
        "notice_disabled": N_("WhatsApp codes were disabled on your account."),
        "notice_switched": N_("Protection settings changed for WhatsApp codes. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("WhatsApp codes are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for a code sent by WhatsApp when "
                        "you confirm this operation."),
        "switch_off": N_("A code sent by WhatsApp will no longer be asked for on this "
                         "operation."),
        "to_enable": N_("to enable WhatsApp codes"),
        "to_manage": N_("to change or disable WhatsApp codes"),
    },
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
