"""PIN rules: exactly 6 digits, and none of the PINs guessed first."""

from __future__ import annotations

import pytest

from stepup.domain.codes import check_pin, is_trivial_pin
from stepup.domain.errors import ValidationFailed


@pytest.mark.parametrize("pin", ["000000", "999999", "123456", "654321", "987654", "121212",
                                 "123123", "112233", "456789"])
def test_trivial_pins_are_refused(pin: str) -> None:
    assert is_trivial_pin(pin)
    with pytest.raises(ValidationFailed) as err:
        check_pin(pin)
    assert err.value.field == "pin"
    assert err.value.code == "validation_error"


@pytest.mark.parametrize("pin", ["417293", "305817", "920461"])
def test_ordinary_pins_are_accepted(pin: str) -> None:
    assert not is_trivial_pin(pin)
    assert check_pin(pin) == pin


@pytest.mark.parametrize("pin", ["", "41729", "4172930", "41729a", "417 93", "４１７２９３",
                                 "-41729"])
def test_pin_must_be_six_ascii_digits(pin: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        check_pin(pin, field="new_pin")
    assert err.value.field == "new_pin"
