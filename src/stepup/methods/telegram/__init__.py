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
    sends_codes=True, message_format="chat", channel_name=N_("Telegram codes"),
    channel_word="Telegram", channel_label="Telegram", destination="phone",
    code_hint=N_("The 6-digit code from the Telegram message we sent you."),
    # The Gateway bills each message: it counts against STEPUP_SMS_BUDGET_PER_HOUR.
    provider=telegram_provider, billed=True,
    setup_intro=N_("Enter the mobile phone number of your Telegram account and your PIN, "
                   "and then click Send. We will send a security code to this number on "
                   "Telegram."),
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable Telegram codes"),
        "disable": N_("Disable Telegram codes"),
        "enabled": N_("Telegram codes are enabled."),
        "disabled": N_("Telegram codes are disabled."),
        "switched": N_("The protection settings of Telegram codes were saved."),
        "notice_enabled": N_("Telegram codes were enabled on your account."),
        "notice_disabled": N_("Telegram codes were disabled on your account."),
        "notice_switched": N_("Protection settings changed for Telegram codes. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("Telegram codes are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for a code sent by Telegram when "
                        "you confirm this operation."),
        "switch_off": N_("A code sent by Telegram will no longer be asked for on this "
                         "operation."),
        "to_enable": N_("to enable Telegram codes"),
        "to_manage": N_("to change or disable Telegram codes"),
    },
)
METHOD = OobMethod(DESCRIPTOR.type)

__all__ = ["DESCRIPTOR", "METHOD"]
