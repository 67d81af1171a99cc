"""Destinations refused by default against SMS pumping, and what STEPUP_PHONE_ALLOW lifts."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from stepup.domain.destinations import normalise_phone
from stepup.domain.errors import ValidationFailed


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def non_geographic(calling_code: int) -> str:
    number = phonenumbers.example_number_for_non_geo_entity(calling_code)
    assert number is not None, calling_code
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


NETWORKS = [non_geographic(cc) for cc in (870, 881, 882)]  # mobile-type ranges
SIERRA_LEONE, SOMALIA = example("SL", PhoneNumberType.MOBILE), example("SO", PhoneNumberType.MOBILE)
PAID = [example("GB", PhoneNumberType.PREMIUM_RATE), example("FR", PhoneNumberType.PREMIUM_RATE),
        example("DE", PhoneNumberType.PREMIUM_RATE), example("FR", PhoneNumberType.SHARED_COST),
        example("ES", PhoneNumberType.SHARED_COST)]


def refusal(phone: str, **kw: object) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        normalise_phone(phone, **kw)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize("phone", NETWORKS)
def test_satellite_and_international_networks_are_refused(phone: str) -> None:
    err = refusal(phone, field="whatsapp_phone")
    assert err.field == "whatsapp_phone"
    assert err.detail == ("Codes are not sent to satellite or international network numbers: "
                          "use another method.")


@pytest.mark.parametrize("phone", [SIERRA_LEONE, SOMALIA, "+232 76 123456"])
def test_the_most_pumped_countries_are_refused(phone: str) -> None:
    err = refusal(phone)
    assert err.field == "phone"
    assert err.detail == ("Codes are not sent to phone numbers of this country because of "
                          "SMS fraud: use another method.")


@pytest.mark.parametrize("phone", PAID)
def test_premium_rate_and_shared_cost_numbers_are_always_refused(phone: str) -> None:
    for allow in (None, ["GB", "FR", "DE", "ES", "44", "33", "49", "34"]):
        err = refusal(phone, allow=allow)
        assert err.field == "phone"
        assert err.detail == "Codes cannot be sent to premium-rate or shared-cost numbers."


def test_phone_allow_names_regions_or_calling_codes() -> None:
    assert normalise_phone(SIERRA_LEONE, allow=["SL"]) == SIERRA_LEONE
    assert normalise_phone(SIERRA_LEONE, allow=["sl"]) == SIERRA_LEONE
    assert normalise_phone(SIERRA_LEONE, allow=["+232"]) == SIERRA_LEONE
    assert normalise_phone(SOMALIA, allow=["252"]) == SOMALIA
    assert normalise_phone(NETWORKS[1], allow=["881"]) == NETWORKS[1]
    # Only what is named: Sierra Leone allowed does not allow Somalia or +881.
    assert "SMS fraud" in refusal(SOMALIA, allow=["SL"]).detail
    assert "satellite" in refusal(NETWORKS[1], allow=["SL", "870"]).detail


def test_phone_countries_still_narrows_what_phone_allow_lifts() -> None:
    err = refusal(SIERRA_LEONE, allow=["SL"], allowed_regions=["GB"])
    assert err.detail == "Codes cannot be sent to phone numbers of this country."
    assert normalise_phone(SIERRA_LEONE, allow=["SL"], allowed_regions=["GB", "SL"]) == \
        SIERRA_LEONE
    # Naming a country in the allow-list alone does not lift the default refusal.
    assert "SMS fraud" in refusal(SIERRA_LEONE, allowed_regions=["SL"]).detail


def test_voip_numbers_stay_refused_as_not_mobile() -> None:
    # +883 ranges are VoIP: allowing the calling code does not make them mobile numbers.
    for phone, allow in ((example("GB", PhoneNumberType.VOIP), ["GB"]),
                         (non_geographic(883), ["883"])):
        assert refusal(phone, allow=allow).detail == \
            "Codes can only be sent to a mobile phone number."


def test_ordinary_mobiles_are_untouched() -> None:
    assert normalise_phone("+447400123456") == "+447400123456"
    assert normalise_phone("+79161234567", allow=["SL"]) == "+79161234567"
    assert normalise_phone("+2348031234567") == "+2348031234567"  # Nigeria: not refused
