"""methods/totp/method.py computes its codes itself (RFC 4226 truncation over one decoded seed):
they must be exactly pyotp's, which authenticator apps agree with, for any seed and step."""

from __future__ import annotations

import base64
import hashlib

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.methods.totp import code_at, hotp, match_step, new_secret, seed_bytes

# pyotp refuses seeds under 128 bits.
SEEDS = st.binary(min_size=16, max_size=64)


@given(seed=SEEDS, step=st.integers(0, 2**40), digits=st.sampled_from([6, 8]),
       digest=st.sampled_from(["sha1", "sha256", "sha512"]))
def test_codes_are_pyotps(seed: bytes, step: int, digits: int, digest: str) -> None:
    secret = base64.b32encode(seed).decode()
    theirs = pyotp.TOTP(secret, digits=digits, digest=getattr(hashlib, digest))
    assert code_at(secret, step, digits=digits, digest=digest) == theirs.generate_otp(step)


@given(seed=SEEDS)
def test_seed_needs_no_padding_and_ignores_case(seed: bytes) -> None:
    padded = base64.b32encode(seed).decode()
    assert seed_bytes(padded.rstrip("=").lower()) == seed_bytes(padded) == seed


@given(step=st.integers(1, 2**32))  # pyotp takes times before the year 10000
def test_match_step_finds_the_apps_code_in_the_window(step: int) -> None:
    secret = new_secret()
    app = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert match_step(secret, app.at((step + offset) * 30), step, 1) == step + offset


def test_an_unknown_digest_is_refused() -> None:
    with pytest.raises(ValueError):
        hotp(b"12345678901234567890", 1, digest="md5")
