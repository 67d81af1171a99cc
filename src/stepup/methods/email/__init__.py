"""Security codes sent by e-mail (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import email_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="email", order=30,
    name=N_("E-mail"), notice_name=N_("E-mail codes"),
    blurb=N_("Security codes sent to your e-mail address."),
    enable_label=N_("Enable e-mail codes"), disable_label=N_("Disable e-mail codes"),
    sends_codes=True, message_format="mail", channel_name=N_("e-mail codes"), channel_word="e-mail",
    channel_label="E-mail", destination="email",
    code_hint=N_("The 6-digit code from the e-mail we sent you."),
    provider=email_provider,
    setup_intro=N_("Enter your e-mail address and your PIN, and then click Send. We will send "
                   "a security code to this address."),
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
