"""Why a phone number is refused: each reason its own situation of ``validation_error``,
told in English and in Russian; and the example a page shows is a number the checks
accept."""

from __future__ import annotations

import pytest

from stepup import i18n
from stepup.domain.destinations import example_phone, normalise_phone
from stepup.domain.errors import ValidationFailed
from stepup.domain.texts import error_text

# (typed, situation, English words, Russian words)
REASONS = [
    ("abc", "phone_not_number", "not a phone number", "не номер телефона"),
    ("8 916 123-45-67", "phone_format", "international format", "международном формате"),
    ("+999 1234567", "phone_country_code", "country code is unknown", "кода страны нет"),
    ("+7 916", "phone_short", "too short", "слишком короткий"),
    ("+44 7700", "phone_short", "too short", "слишком короткий"),
    ("+44 7400 1234567890", "phone_long", "too long", "слишком длинный"),
    ("+44 7700 900123", "phone", "not a valid phone number", "неправильный номер"),
    ("+44 20 7946 0018", "phone_mobile", "mobile phone number", "мобильного телефона"),
]


def _refusal(typed: str, **kw: object) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        normalise_phone(typed, **kw)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(("typed", "situation", "en", "ru"), REASONS)
def test_each_reason_is_its_own_situation_in_both_languages(typed: str, situation: str,
                                                            en: str, ru: str) -> None:
    err = _refusal(typed)
    assert (err.code, err.situation, err.field) == ("validation_error", situation, "phone")
    assert en in error_text(err)
    assert ru in error_text(err, i18n.translations("ru")).lower()


def test_a_country_not_allowed_is_told_as_such() -> None:
    err = _refusal("+79161234567", allowed_regions=["GB"])
    assert err.situation == "phone_country"
    assert "this country" in error_text(err)
    assert "этой страны" in error_text(err, i18n.translations("ru"))


def test_a_national_number_with_a_default_region_but_an_unknown_code_says_so() -> None:
    # With a default region a national number is read; a "+" with no such code is not.
    assert _refusal("+999 1234567", default_region="RU").situation == "phone_country_code"


@pytest.mark.parametrize(("region", "shown"), [("GB", "+44 7400 123456"),
                                               ("RU", "+7 912 345-67-89"),
                                               ("de", "+49 1512 3456789")])
def test_the_example_of_a_region_is_a_mobile_the_checks_accept(region: str, shown: str
                                                               ) -> None:
    assert example_phone(region) == shown
    assert normalise_phone(shown) == "+" + "".join(c for c in shown if c.isdigit())


def test_no_example_for_an_unknown_region() -> None:
    assert example_phone("ZZ") is None
