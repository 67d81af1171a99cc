"""Password rules (NIST SP 800-63B): length and a block list, no composition rules."""

from __future__ import annotations

import pytest

from stepup.config import Settings
from stepup.domain.codes import check_password
from stepup.domain.errors import ValidationFailed

EMAIL = "jane@example.com"
DEFAULTS = Settings()


def check(password: str, *, max_length: int | None = None) -> str:
    return check_password(password, email=EMAIL, min_length=DEFAULTS.password_min_length,
                          max_length=max_length or DEFAULTS.password_max_length)


def refused(password: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as err:
        check(password)
    assert err.value.field == "password"
    return err.value


def test_defaults() -> None:
    assert DEFAULTS.password_min_length == 12
    assert DEFAULTS.password_max_length >= 64


def test_minimum_length_is_twelve() -> None:
    assert "12" in refused("violet-harb").detail  # 11 characters
    assert check("violet-harbo") == "violet-harbo"  # 12


def test_long_passwords_and_passphrases_are_accepted() -> None:
    long = "correct horse battery staple, " * 2 + "zebra"  # 65 characters
    assert len(long) >= 64
    assert check(long) == long
    assert check("x7y" * 42, max_length=128) == "x7y" * 42


def test_over_the_maximum_is_refused() -> None:
    refused("q" * 60 + "w" * 69)


def test_no_composition_rules() -> None:
    assert check("all lowercase words here")
    assert check("ВСЕ БУКВЫ КИРИЛЛИЦЕЙ")


@pytest.mark.parametrize("password", ["password1234", "PASSWORD1234", " qwertyuiop123 ",
                                      "qwerty123456"])
def test_common_passwords_are_refused(password: str) -> None:
    assert "common" in refused(password).detail


def test_the_e_mail_address_and_repeats_are_refused() -> None:
    refused("jane@example.com")
    refused("abababababababab")
    refused("aaaaaaaaaaaaaaaa")


CONTEXT = Settings(issuer="StepUp Cloud", public_url="https://auth.brokerly.com"
                   ).password_context


@pytest.mark.parametrize("password", ["stepup", "StepUp2024!!!!", "!!stepup!!123",
                                      "Cloud-2024-25", "stepup cloud 1",
                                      "brokerly-12345", "auth.brokerly.com",
                                      "jane-2024-2025"])
def test_the_services_own_words_and_the_user_name_are_refused(password: str) -> None:
    """NIST SP 800-63B-4 §3.1.1.2: context-specific words (the service's name, its
    host, the user name) and their derivatives are refused."""
    with pytest.raises(ValidationFailed) as err:
        check_password(password.ljust(12, "1"), email=EMAIL, min_length=12, max_length=64,
                       context=CONTEXT)
    assert "easy to guess" in err.value.detail


def test_a_passphrase_that_merely_contains_the_name_is_accepted() -> None:
    assert check_password("my stepup harbour lanterns", email=EMAIL, min_length=12,
                          max_length=64, context=CONTEXT)


def test_the_context_comes_from_the_issuer_and_public_address() -> None:
    assert CONTEXT == ("StepUp Cloud", "StepUp", "Cloud", "auth.brokerly.com", "brokerly")
