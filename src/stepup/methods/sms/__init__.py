"""Security codes sent by SMS (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import sms_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="sms", order=20,
    name=N_("SMS"), notice_name=N_("SMS codes"),
    blurb=N_("Security codes sent to your mobile phone by SMS."),
    enable_label=N_("Enable SMS codes"), disable_label=N_("Disable SMS codes"),
    sends_codes=True, message_format="text", channel_name=N_("SMS codes"),
    channel_word="SMS", channel_label="SMS",
    destination="phone", verifies_phone=True,
    code_hint=N_("The 6-digit code from the SMS we sent you."),
    provider=sms_provider, billed=True,
    setup_intro=N_("Enter your mobile phone number and your PIN, and then click Send. We will "
                   "send a security code to this number."),
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
