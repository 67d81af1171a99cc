"""Security codes sent by e-mail (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import email_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="email", order=30,
    name=N_("E-mail"), notice_name=N_("E-mail codes"),
    blurb=N_("Security codes sent to your e-mail address."),
    sends_codes=True, message_format="mail", channel_name=N_("e-mail codes"), channel_word="e-mail",
    channel_label="E-mail", destination="email",
    code_hint=N_("The 6-digit code from the e-mail we sent you."),
    provider=email_provider,
    setup_intro=N_("Enter your e-mail address and your PIN, and then click Send. We will send "
                   "a security code to this address."),
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable e-mail codes"),
        "disable": N_("Disable e-mail codes"),
        "enabled": N_("E-mail codes are enabled."),
        "disabled": N_("E-mail codes are disabled."),
        "switched": N_("The protection settings of e-mail codes were saved."),
        "notice_enabled": N_("E-mail codes were enabled on your account."),
        "notice_disabled": N_("E-mail codes were disabled on your account."),
        "notice_switched": N_("Protection settings changed for e-mail codes. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("E-mail codes are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for a code sent by e-mail when you "
                        "confirm this operation."),
        "switch_off": N_("A code sent by e-mail will no longer be asked for on this operation."),
        "to_enable": N_("to enable e-mail codes"),
        "to_manage": N_("to change or disable e-mail codes"),
    },
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
