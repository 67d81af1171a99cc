"""Phone numbers and e-mail addresses: normalised, validated and masked."""

from __future__ import annotations

import pytest

from stepup.domain.destinations import (
    mask,
    mask_email,
    mask_phone,
    normalise_email_address,
    normalise_phone,
    phone_region,
)
from stepup.domain.errors import ValidationFailed


@pytest.mark.parametrize(("typed", "e164"), [
    ("+7 916 123-45-67", "+79161234567"),
    ("+7 (916) 123 45 67", "+79161234567"),
    ("  +79161234567 ", "+79161234567"),
    ("+44 7400 123456", "+447400123456"),
    ("+1 201-555-0123", "+12015550123"),  # fixed line or mobile: accepted
    ("+33 6 12 34 56 78", "+33612345678"),
])
def test_numbers_are_normalised_to_e164(typed: str, e164: str) -> None:
    assert normalise_phone(typed) == e164


def test_a_default_region_reads_national_numbers() -> None:
    assert normalise_phone("8 916 123-45-67", default_region="RU") == "+79161234567"
    assert normalise_phone("07400 123456", default_region="GB") == "+447400123456"
    # An international number ignores the default region.
    assert normalise_phone("+447400123456", default_region="RU") == "+447400123456"


@pytest.mark.parametrize("typed", ["", "   ", "12", "abc", "+7 916", "+999 1234567",
                                   "89161234567", "+447700900123"])
def test_invalid_numbers_name_the_field(typed: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        normalise_phone(typed)
    assert info.value.field == "phone"


@pytest.mark.parametrize("fixed", ["+442079460018", "+74951234567", "+33 1 42 68 53 00"])
def test_fixed_line_numbers_are_refused(fixed: str) -> None:
    with pytest.raises(ValidationFailed, match="mobile") as info:
        normalise_phone(fixed, field="whatsapp_phone")
    assert info.value.field == "whatsapp_phone"


def test_the_country_allow_list() -> None:
    assert normalise_phone("+447400123456", allowed_regions=["GB", "RU"]) == "+447400123456"
    assert normalise_phone("+79161234567", allowed_regions=["gb", "ru"]) == "+79161234567"
    with pytest.raises(ValidationFailed, match="country") as info:
        normalise_phone("+79161234567", allowed_regions=["GB"])
    assert info.value.field == "phone"
    # +44 is shared: a Guernsey mobile is not a GB number.
    with pytest.raises(ValidationFailed, match="country"):
        normalise_phone("+447911123456", allowed_regions=["GB"])
    assert normalise_phone("+79161234567", allowed_regions=[]) == "+79161234567"


def test_phone_region() -> None:
    assert phone_region("+79161234567") == "RU"
    assert phone_region("+447400123456") == "GB"
    assert phone_region("nonsense") is None


@pytest.mark.parametrize(("typed", "stored"), [
    ("jane@example.com", "jane@example.com"),
    ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
    ("jane+codes@sub.example.org", "jane+codes@sub.example.org"),
])
def test_email_addresses_are_normalised(typed: str, stored: str) -> None:
    assert normalise_email_address(typed) == stored


@pytest.mark.parametrize("typed", ["", "jane", "jane@", "@example.com", "jane@@example.com",
                                   "jane doe@example.com", "jane@example"])
def test_invalid_email_addresses_name_the_field(typed: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        normalise_email_address(typed)
    assert info.value.field == "email"


@pytest.mark.parametrize(("e164", "masked"), [
    ("+79161234567", "+7 *** ***-45-67"),
    ("+447400123456", "+44 **** **3456"),
    ("+12015550123", "+1 ***-***-0123"),
    ("+33612345678", "+33 * ** ** 56 78"),
])
def test_phones_are_masked_to_country_code_and_last_four_digits(e164: str, masked: str
                                                                ) -> None:
    assert mask_phone(e164) == masked
    assert mask("sms", e164) == masked and mask("whatsapp", e164) == masked
    country = masked.split()[0].lstrip("+")
    assert sum(c.isdigit() for c in mask_phone(e164)) == len(country) + 4


def test_a_broken_phone_is_masked_entirely() -> None:
    assert mask_phone("garbage") == "***"


@pytest.mark.parametrize(("address", "masked"), [
    ("jane@example.com", "j***@example.com"),
    ("j@example.com", "j***@example.com"),
    ("omar.k@mail.example.org", "o***@mail.example.org"),
    ("no-at-sign", "***"),
])
def test_emails_are_masked(address: str, masked: str) -> None:
    assert mask_email(address) == masked
    assert mask("email", address) == masked
