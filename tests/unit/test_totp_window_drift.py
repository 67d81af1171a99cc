"""The ±1 step window and the clock-drift hint of the authenticator app method."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from stepup.methods.totp import (
    STEP_SECONDS,
    code_at,
    drift_minutes,
    match_step,
    new_secret,
    time_step,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = time_step(datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC))


def test_code_at_agrees_with_an_authenticator_app() -> None:
    when = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert code_at(SECRET, time_step(when)) == pyotp.TOTP(SECRET).at(when)


def test_time_step_boundaries() -> None:
    assert time_step(datetime.fromtimestamp(0, tz=UTC)) == 0
    assert time_step(datetime.fromtimestamp(29, tz=UTC)) == 0
    assert time_step(datetime.fromtimestamp(30, tz=UTC)) == 1


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_window_of_one_accepts_the_neighbouring_steps(offset: int) -> None:
    code = code_at(SECRET, NOW + offset)
    assert match_step(SECRET, code, NOW, 1) == NOW + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_window_of_one_refuses_two_steps_away(offset: int) -> None:
    assert match_step(SECRET, code_at(SECRET, NOW + offset), NOW, 1) is None


def test_window_zero_accepts_only_the_current_step() -> None:
    assert match_step(SECRET, code_at(SECRET, NOW), NOW, 0) == NOW
    assert match_step(SECRET, code_at(SECRET, NOW + 1), NOW, 0) is None


def test_wrong_code_matches_nothing() -> None:
    real = {code_at(SECRET, NOW + o) for o in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in real)
    assert match_step(SECRET, wrong, NOW, 1) is None


@pytest.mark.parametrize(("steps", "minutes"), [(10, 5), (-10, -5), (2, 1), (-2, -1), (20, 10),
                                                (4, 2), (-6, -3)])
def test_drift_minutes_says_how_far_and_which_way(steps: int, minutes: int) -> None:
    code = code_at(SECRET, NOW + steps)
    assert match_step(SECRET, code, NOW, 1) is None
    assert drift_minutes(SECRET, code, NOW, 1, 20) == minutes


def test_drift_is_not_reported_inside_the_window_or_beyond_reach() -> None:
    assert drift_minutes(SECRET, code_at(SECRET, NOW + 1), NOW, 1, 20) is None
    assert drift_minutes(SECRET, code_at(SECRET, NOW + 21), NOW, 1, 20) is None
    assert drift_minutes(SECRET, code_at(SECRET, NOW - 21), NOW, 1, 20) is None


def test_new_secret_is_160_bits_of_base32() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for s in secrets:
        assert len(s) == 32
        assert len(pyotp.TOTP(s).byte_secret()) == 20
    assert STEP_SECONDS == 30
