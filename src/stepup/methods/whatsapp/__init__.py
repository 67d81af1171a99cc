"""Security codes sent on WhatsApp (the shared logic of code channels is methods/oob.py)."""

from __future__ import annotations

from stepup.delivery.channels import whatsapp_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="whatsapp", order=40,
    name=N_("WhatsApp"), notice_name=N_("WhatsApp codes"),
    blurb=N_("Security codes sent to you on WhatsApp."),
    enable_label=N_("Enable WhatsApp codes"), disable_label=N_("Disable WhatsApp codes"),
    sends_codes=True, message_format="chat", channel_name=N_("WhatsApp codes"),
    channel_word="WhatsApp",
    channel_label="WhatsApp", destination="phone",
    code_hint=N_("The 6-digit code from the WhatsApp message we sent you."),
    provider=whatsapp_provider, billed=True,
    setup_intro=N_("Enter the mobile phone number you use on WhatsApp and your PIN, and then "
                   "click Send. We will send a security code to this number on WhatsApp."),
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
