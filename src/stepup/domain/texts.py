"""The catalogue of error texts: what a refused request tells a person, keyed by ``code``.

One entry per error code, plus an entry per *situation* where one code covers cases a
person is told differently (``"invalid_code.clock_ahead"``, ``"validation_error.phone"``).
The API's ``detail`` and the pages render the same entry: English in the API by default,
translated on the pages (and in the API for ``Accept-Language: ru``). Raise sites name a
situation (``InvalidCode(situation="clock_ahead", values={...})``) instead of writing a
sentence, so a sentence is written once, here, and translated once, in ``locales/``.

A raise site may still give its own English ``detail`` (a sentence only one place can
say, like a pydantic message or the name of a missing checklist item): the API shows it,
and other languages show the code's entry instead. An operator overrides any text through
the adapter (``stepup.adapter.Adapter.error_text``).

Pure Python: the caller hands in the language's translations (``gettext``/``ngettext``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stepup.domain.errors import DomainError


def N_(message: str) -> str:  # the gettext "mark only" convention
    """Mark a string for extraction; it is translated where it is shown."""
    return message


class Translations(Protocol):
    def gettext(self, message: str, /) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...


class _English:
    def gettext(self, message: str, /) -> str:
        return message

    def ngettext(self, singular: str, plural: str, n: int, /) -> str:
        return singular if n == 1 else plural


ENGLISH: Translations = _English()


@dataclass(frozen=True)
class Text:
    """One text: ``%(name)s`` placeholders take the error's values; with ``plural``, the
    number ``%(num)d`` (read by ``count`` off the error) picks the form."""

    message: str
    plural: str | None = None


# Keyed by code, or "code.situation". Texts equal to what the API said before this
# catalogue existed where a client or a test reads them.
ERRORS: dict[str, Text] = {
    "error": Text(N_("Something went wrong.")),
    "validation_error": Text(N_("The request is not valid.")),
    "validation_error.phone": Text(N_("This is not a valid phone number.")),
    "validation_error.phone_format": Text(N_(
        "Enter the phone number in international format: a + and the country code "
        "first.")),
    "validation_error.phone_not_number": Text(N_(
        "This is not a phone number: enter digits, starting with a + and the country "
        "code.")),
    "validation_error.phone_country_code": Text(N_(
        "The country code is unknown: check the digits after the +.")),
    "validation_error.phone_short": Text(N_(
        "The number is too short: check that no digit is missing.")),
    "validation_error.phone_long": Text(N_(
        "The number is too long: check that no digit is repeated.")),
    "validation_error.phone_mobile": Text(N_(
        "Codes can only be sent to a mobile phone number.")),
    "validation_error.phone_country": Text(N_(
        "Codes cannot be sent to phone numbers of this country.")),
    "validation_error.phone_premium": Text(N_(
        "Codes cannot be sent to premium-rate or shared-cost numbers.")),
    "validation_error.phone_satellite": Text(N_(
        "Codes are not sent to satellite or international network numbers: use another "
        "method.")),
    "validation_error.phone_fraud": Text(N_(
        "Codes are not sent to phone numbers of this country because of SMS fraud: use "
        "another method.")),
    "validation_error.email": Text(N_("The e-mail address is not valid.")),
    # The PIN and password rules (domain/codes.py): told in every language, with the why.
    "validation_error.pin_format": Text(N_("The PIN must be exactly 6 digits.")),
    "validation_error.pin_easy": Text(N_(
        "This PIN is too easy to guess: avoid repeated digits and sequences.")),
    "validation_error.password_short": Text(N_(
        "The password must be at least %(min)d characters long.")),
    "validation_error.password_long": Text(N_(
        "The password must be at most %(max)d characters long.")),
    "validation_error.password_common": Text(N_(
        "This password is on a list of commonly used passwords: choose another.")),
    "validation_error.password_easy": Text(N_("This password is too easy to guess.")),
    "validation_error.recovery_description": Text(N_(
        "Tell support in a few words what happened (at least %(min)d characters).")),
    "validation_error.recovery_description_long": Text(N_(
        "Please keep the description under %(max)d characters.")),
    "validation_error.recovery_channel": Text(N_("Choose how support should contact you.")),
    "validation_error.recovery_phone": Text(N_(
        "Enter the phone number support should call.")),
    "validation_error.recovery_checks": Text(N_(
        "Every identity check must be done, and a rejection needs a reason.")),
    "invalid_credentials": Text(N_("The e-mail or password is not correct.")),
    "not_authenticated": Text(N_("You need to log in again.")),
    "forbidden": Text(N_("This is not allowed.")),
    "forbidden.csrf": Text(N_("The form has expired or did not come from this site. Reload "
                              "the page and try again.")),
    "forbidden.method_not_offered": Text(N_("This method is not offered for your account.")),
    "forbidden.no_second_factor": Text(N_(
        "This account has no authenticator app or passkey to log in with, and it needs "
        "one: ask an administrator to set it up again.")),
    "forbidden.supervisor_only": Text(N_("Only a supervisor can approve a recovery request.")),
    "forbidden.recovery_supervisor": Text(N_(
        "You may not do this: approval needs a supervisor other than the staff member who "
        "recorded the checks.")),
    "not_found": Text(N_("Not found.")),
    "conflict": Text(N_("This step is not possible in the current state.")),
    "conflict.operation_pin_accepted": Text(N_(
        "The PIN was already accepted: enter the security code.")),
    "conflict.operation_details_changed": Text(N_(
        "The details of this operation changed after it was created: start a new "
        "operation.")),
    "invalid_code": Text(N_("The security code is not valid.")),
    "invalid_code.clock_ahead": Text(
        N_("The code is not valid now: your device clock seems to be about %(num)d "
           "minute ahead. Sync the time on your device and try a new code."),
        N_("The code is not valid now: your device clock seems to be about %(num)d "
           "minutes ahead. Sync the time on your device and try a new code.")),
    "invalid_code.clock_behind": Text(
        N_("The code is not valid now: your device clock seems to be about %(num)d "
           "minute behind. Sync the time on your device and try a new code."),
        N_("The code is not valid now: your device clock seems to be about %(num)d "
           "minutes behind. Sync the time on your device and try a new code.")),
    "invalid_code.email_link": Text(N_(
        "This link no longer works: it was used, it expired, or a newer one was sent. Log "
        "in and ask for a new one.")),
    "code_expired": Text(N_("The security code has expired: ask for a new one.")),
    "pin_invalid": Text(N_("The PIN is not correct.")),
    "method_locked": Text(N_("Too many wrong codes: this method is locked for a while.")),
    "method_locked.wait": Text(
        N_("Too many wrong attempts: try again in %(num)d minute."),
        N_("Too many wrong attempts: try again in %(num)d minutes.")),
    "method_locked.pin": Text(
        N_("Too many wrong PINs: the PIN is locked for %(num)d minute."),
        N_("Too many wrong PINs: the PIN is locked for %(num)d minutes.")),
    "account_locked": Text(N_("Too many failed attempts: the account is locked.")),
    "method_not_enabled": Text(N_("This method is not enabled.")),
    "method_required": Text(N_("This method cannot be disabled: your account needs it.")),
    "second_factor_required": Text(N_("A second factor is required.")),
    "rate_limited": Text(N_("Too many attempts: try again later.")),
    "resend_too_soon.wait": Text(
        N_("Please wait %(num)d second before asking for a new code."),
        N_("Please wait %(num)d seconds before asking for a new code.")),
    "send_cap_reached.wait": Text(
        N_("Too many codes were sent. Try again in %(num)d minute, or use another method."),
        N_("Too many codes were sent. Try again in %(num)d minutes, or use another "
           "method.")),
    "delivery_failed": Text(N_(
        "We could not send the code right now. Nothing was changed: please try again in a "
        "few minutes, or use another method.")),
    "delivery_failed.channel": Text(N_(
        "We could not send the code by %(channel)s right now. Nothing was changed: please "
        "try again in a few minutes, or use another method.")),
    "pin_required": Text(N_("Enter your PIN first.")),
    "operation_already_confirmed": Text(N_("This operation is already confirmed.")),
    "operation_expired": Text(N_("This operation has expired: start it again.")),
    "method_already_enabled": Text(N_("The method is already enabled.")),
    "email_taken": Text(N_("This e-mail address is already used.")),
    "invalid_credentials.current_password": Text(N_("The current password is not correct.")),
    "invalid_reset_token": Text(N_(
        "This password reset link is not valid: it has expired, was already used, or a "
        "newer link was sent. Ask for a new link.")),
    "user_conflict": Text(N_("These details belong to different users.")),
    "code_already_used": Text(N_("This code was already used: enter a new one.")),
    "method_not_allowed_for_purpose": Text(N_("This method does not protect this.")),
    "method_sends_no_codes": Text(N_(
        "This method does not send codes: enter the code it shows.")),
    "state_changed": Text(N_("This changed meanwhile: reload it.")),
    "state_changed.operation": Text(N_("This operation changed meanwhile: reload it.")),
    "recovery_already_open": Text(N_("A recovery request is already open.")),
    "webhook_not_configured": Text(N_("No webhook URL is set for this app.")),
    "idempotency_key_in_use": Text(N_(
        "A request with this Idempotency-Key is still being processed.")),
    "idempotency_key_reused": Text(N_(
        "This Idempotency-Key was used with another request.")),
    "api_quota_exceeded": Text(N_("This API key made too many calls.")),
    "resend_too_soon": Text(N_("A code was sent moments ago: wait before asking for another.")),
    "send_cap_reached": Text(N_("Too many codes were sent: try again later.")),
    "recovery_cooldown": Text(N_("A recovery request was closed lately: try again later.")),
    "signup_limit_reached": Text(N_("Too many sign-ups from this network.")),
    "invalid_destination": Text(N_("Messages cannot be delivered to this destination.")),
    "invalid_destination.channel": Text(N_(
        "Messages by %(channel)s cannot be delivered to this destination: check it, or use "
        "another method.")),
    "no_method_for_operation": Text(N_(
        "Nothing can confirm this operation yet: verify your e-mail address, or switch on "
        "a method for it in Settings → Authentication methods.")),
    "email_already_verified": Text(N_("Your e-mail address is already verified.")),
}


def key(err: DomainError) -> str:
    """The catalogue entry an error is told by: its situation's, else its code's."""
    situation = err.situation or _derived_situation(err)
    if situation and f"{err.code}.{situation}" in ERRORS:
        return f"{err.code}.{situation}"
    return err.code if err.code in ERRORS else "error"


def _derived_situation(err: DomainError) -> str | None:
    # Situations read off what the error already carries (raise sites need not repeat it).
    if err.code == "invalid_code" and "clock_drift_minutes" in err.extra:
        return "clock_ahead" if int(err.extra["clock_drift_minutes"]) > 0 else "clock_behind"
    if err.code in ("method_locked", "resend_too_soon", "send_cap_reached") and (
            err.retry_after):
        return "wait"
    return None


def count(err: DomainError) -> int:
    """The number a plural text is about: minutes of drift, of a lock, seconds to wait."""
    if "num" in err.values:
        return int(err.values["num"])
    if "clock_drift_minutes" in err.extra:
        return abs(int(err.extra["clock_drift_minutes"]))
    seconds = err.retry_after or 0
    if key(err) == "resend_too_soon.wait":
        return seconds
    return max(1, -(-seconds // 60))  # minutes, rounded up


# The channels' words a text names as ``%(channel)s`` (methods' ``channel_word``): a
# value of the language, not an English word in a Russian sentence.
CHANNEL_WORDS = (N_("SMS"), N_("e-mail"), N_("WhatsApp"), N_("Telegram"))


def render(text: Text, values: dict[str, Any], translations: Translations, num: int) -> str:
    if isinstance(values.get("channel"), str):
        values = {**values, "channel": translations.gettext(values["channel"])}
    if text.plural is None:
        message = translations.gettext(text.message)
    else:
        message = translations.ngettext(text.message, text.plural, num)
    return message % {"num": num, **values} if "%(" in message else message


def error_text(err: DomainError, translations: Translations = ENGLISH) -> str:
    """What to tell a person about ``err``, in the language of ``translations``.

    An error told by a catalogue entry gets that entry (translated). An error whose raise
    site wrote its own English sentence gets it in English, and the entry of its
    situation, else of its code, in any other language (a sentence the catalogue does not
    hold has no translation).
    """
    entry = ERRORS[key(err)]
    if err.own_detail is not None:
        translated = translations.gettext(err.own_detail)
        if translated != err.own_detail:
            return translated
        # A language that has no text of its own for the code's entry speaks English.
        if translations.gettext(entry.message) == entry.message:
            return err.own_detail
    try:
        return render(entry, err.values, translations, count(err))
    except (KeyError, ValueError, TypeError):
        # A raise site that did not give a value its situation's text names: the code's
        # own text, never an error while telling an error.
        return render(ERRORS[err.code if err.code in ERRORS else "error"], {}, translations,
                      count(err))


def as_send_refusal(err: DomainError) -> DomainError:
    """``err`` as told where a code was asked for: any other refusal with a wait (a
    passkey request cap, a login limit) is told as a wait for a new code — seconds when
    short, else minutes."""
    from stepup.domain.errors import RateLimited, ResendTooSoon, SendCapReached

    if not isinstance(err, RateLimited) or not err.retry_after or isinstance(
            err, ResendTooSoon | SendCapReached):
        return err
    if err.retry_after <= 120:
        return ResendTooSoon(retry_after=err.retry_after)
    return SendCapReached(retry_after=err.retry_after)
