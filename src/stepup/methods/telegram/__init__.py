"""Security codes sent on Telegram, through the Telegram Gateway API (the shared logic of
code channels is methods/oob.py; the provider is delivery/telegram.py).

Telegram words the message itself around our code, in the "Verification Codes" chat of
the account that holds the phone number, so only the code is ours: the chat-shaped text
below is what the development outbox shows.
"""

from __future__ import annotations

from stepup.delivery.telegram import telegram_provider
from stepup.methods.base import N_, Descriptor
from stepup.methods.oob import OobMethod

DESCRIPTOR = Descriptor(
    type="telegram", order=45,
    name=N_("Telegram"), notice_name=N_("Telegram codes"),
    blurb=N_("Security codes sent to you on Telegram."),
    enable_label=N_("Enable Telegram codes"), disable_label=N_("Disable Telegram codes"),
    sends_codes=True, message_format="chat", channel_name=N_("Telegram codes"),
    channel_word="Telegram", channel_label="Telegram", destination="phone",
    code_hint=N_("The 6-digit code from the Telegram message we sent you."),
    # The Gateway bills each message: it counts against STEPUP_SMS_BUDGET_PER_HOUR.
    provider=telegram_provider, billed=True,
    setup_intro=N_("Enter the mobile phone number of your Telegram account and your PIN, "
                   "and then click Send. We will send a security code to this number on "
                   "Telegram."),
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
