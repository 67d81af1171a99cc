"""Where out-of-band codes go: phone numbers (E.164) and e-mail addresses, and how they
are shown masked in every answer and page."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType, ValidationResult

from stepup.domain.errors import ValidationFailed

# Mobile numbers only: a code for a fixed line is lost, and VoIP numbers are bought by
# the thousand and tied to no device, which an out-of-band authenticator must be
# (NIST SP 800-63B).
_PHONE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
# Numbers whose owner is paid for each message they receive: never a code's destination,
# whatever STEPUP_PHONE_ALLOW says.
_PAID_TYPES = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}
# Refused unless the operator allows them (STEPUP_PHONE_ALLOW): the international
# networks (satellite and global ranges: Inmarsat +870, Iridium/Globalstar and other
# GMSS +881, international networks +882/+883), which hardly any user signs in from and
# which are among the dearest to reach; and the countries most named in SMS-pumping
# reports (README → Decisions).
INTERNATIONAL_NETWORKS = frozenset({870, 881, 882, 883})
REFUSED_COUNTRIES = frozenset({"SL", "SO"})  # Sierra Leone +232, Somalia +252


# Why a number of the right shape is refused, told apart so the person knows what to fix
# (domain/texts.py: validation_error.phone_short, …). A number only dialable inside its
# own area (IS_POSSIBLE_LOCAL_ONLY) lacks its area code: too short, for a person.
_LENGTH_REASONS = {
    ValidationResult.TOO_SHORT: "phone_short",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "phone_short",
    ValidationResult.TOO_LONG: "phone_long",
    ValidationResult.INVALID_COUNTRY_CODE: "phone_country_code",
}


def _unreadable(exc: phonenumbers.NumberParseException, *, international: bool,
                default_region: str | None) -> str:
    """The situation of a text phonenumbers cannot read as a number at all."""
    kind = exc.error_type
    if kind == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        # Without a leading + and with no default region there is no country to read it
        # in: the person must write the number in international form.
        return "phone_country_code" if international or default_region else "phone_format"
    if kind in (phonenumbers.NumberParseException.TOO_SHORT_NSN,
                phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD):
        return "phone_short"
    if kind == phonenumbers.NumberParseException.TOO_LONG:
        return "phone_long"
    return "phone_not_number"


def example_phone(region: str) -> str | None:
    """An example mobile number of ``region`` in international form (``+7 912 345-67-89``),
    from phonenumbers' metadata: a number the checks above accept. None for a region
    phonenumbers has no mobile example for."""
    number = phonenumbers.example_number_for_type(region.upper(), PhoneNumberType.MOBILE)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _allows(allow: list[str] | None, country_code: int | None, region: str | None
            ) -> bool:
    """Whether ``allow`` (region codes like ``SL``, calling codes like ``232``/``+881``)
    names this number's country or network."""
    names = {a.strip().upper().lstrip("+") for a in allow or ()}
    return str(country_code) in names or (region is not None and region in names)


def _valid_number(raw: str, *, default_region: str | None, field: str
                  ) -> phonenumbers.PhoneNumber:
    """``raw`` read as a number that exists (of any line), or ``ValidationFailed`` with
    why not: not a number, not in international form, an unknown country code, too
    short, too long, not a valid number."""
    text = (raw or "").strip()
    international = text.startswith("+")
    try:
        number = phonenumbers.parse(text, None if international else default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(situation=_unreadable(exc, international=international,
                                                     default_region=default_region),
                               field=field) from exc
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _LENGTH_REASONS:
        raise ValidationFailed(situation=_LENGTH_REASONS[possible], field=field)
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(situation="phone", field=field)
    return number


# What a number to call may be written with besides digits: phonenumbers would read
# letters as a keypad's ("0800-FLOWERS"), and a sentence is not a number.
_CALL_MARKS = frozenset("+-(). /")


def check_call_number(raw: str, *, default_region: str | None = None,
                      field: str = "phone") -> None:
    """A number a person can be called back on — any line (fixed, mobile, VoIP), unlike
    a code's destination — or ``ValidationFailed`` with the same reasons as
    ``normalise_phone`` gives for a number it cannot read or that does not exist."""
    text = (raw or "").strip()
    if text and not all(c.isdigit() or c in _CALL_MARKS for c in text):
        raise ValidationFailed(situation="phone_not_number", field=field)
    _valid_number(text, default_region=default_region, field=field)


def normalise_phone(raw: str, *, default_region: str | None = None,
                    allowed_regions: list[str] | None = None, allow: list[str] | None = None,
                    field: str = "phone") -> str:
    """E.164 form of a mobile number, or ``ValidationFailed`` naming the field and, as its
    situation, why the number is refused: not a number, not in international form, an
    unknown country code, too short, too long, not a valid number, premium-rate, a
    satellite network, an SMS-fraud country, not a mobile, a country not allowed.

    ``allowed_regions``: the only regions accepted (empty: all); ``allow``: regions or
    calling codes that lift the default refusal of the international networks and of
    ``REFUSED_COUNTRIES``. Premium-rate and shared-cost numbers are always refused.
    """
    number = _valid_number(raw, default_region=default_region, field=field)
    kind = phonenumbers.number_type(number)
    if kind in _PAID_TYPES:
        raise ValidationFailed(situation="phone_premium", field=field)
    region = phonenumbers.region_code_for_number(number)
    if not _allows(allow, number.country_code, region):
        if number.country_code in INTERNATIONAL_NETWORKS:
            raise ValidationFailed(situation="phone_satellite", field=field)
        if region in REFUSED_COUNTRIES:
            raise ValidationFailed(situation="phone_fraud", field=field)
    if kind not in _PHONE_TYPES:
        raise ValidationFailed(situation="phone_mobile", field=field)
    if allowed_regions and region not in {r.upper() for r in allowed_regions}:
        raise ValidationFailed(situation="phone_country", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None


def normalise_email_address(raw: str, field: str = "email") -> str:
    try:
        info = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"The e-mail address is not valid: {exc}", field=field,
                               situation="email") from exc
    return info.normalized.lower()


def mask_phone(e164: str) -> str:
    """``+7 *** ***-45-67``: the country code and the last four digits stay visible."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return "***"
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{number.country_code}"
    rest = shown[len(prefix):]
    total = sum(c.isdigit() for c in rest)
    out, seen = [], 0
    for c in rest:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - 4 else "*")
        else:
            out.append(c)
    return prefix + "".join(out)


def mask_email(address: str) -> str:
    """``j***@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask(channel: str, destination: str) -> str:
    return mask_email(destination) if channel == "email" else mask_phone(destination)
