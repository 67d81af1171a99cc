"""RFC 6238 Appendix B test vectors, through the functions methods/totp/method.py uses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from stepup.methods.totp import code_at, match_step, time_step

# The RFC's seeds: "12345678901234567890" repeated to the digest's key length.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# (Unix time, SHA1, SHA256, SHA512), 8 digits, T0 = 0, X = 30 s.
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]

CASES = [
    pytest.param(t, digest, expected, id=f"{digest}-{t}")
    for t, *codes in VECTORS
    for digest, expected in zip(("sha1", "sha256", "sha512"), codes, strict=True)
]

# The steps the RFC's table lists in hex for each time (column "T").
STEPS = {59: 0x1, 1111111109: 0x23523EC, 1111111111: 0x23523ED, 1234567890: 0x273EF07,
         2000000000: 0x3F940AA, 20000000000: 0x27BC86AA}


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


@pytest.mark.parametrize("unix_time", sorted(STEPS))
def test_time_step_matches_the_rfc_table(unix_time: int) -> None:
    assert time_step(datetime.fromtimestamp(unix_time, tz=UTC)) == STEPS[unix_time]


@pytest.mark.parametrize(("unix_time", "digest", "expected"), CASES)
def test_code_at_gives_the_rfc_code(unix_time: int, digest: str, expected: str) -> None:
    step = time_step(datetime.fromtimestamp(unix_time, tz=UTC))
    assert code_at(b32(SEEDS[digest]), step, digits=8, digest=digest) == expected


@pytest.mark.parametrize(("unix_time", "digest", "expected"), CASES)
def test_match_step_finds_the_rfc_code_at_its_step(unix_time: int, digest: str,
                                                   expected: str) -> None:
    step = time_step(datetime.fromtimestamp(unix_time, tz=UTC))
    secret = b32(SEEDS[digest])
    assert match_step(secret, expected, step, 0, digits=8, digest=digest) == step
    # One step later the same code is still accepted inside a ±1 window, as the previous step.
    assert match_step(secret, expected, step + 1, 1, digits=8, digest=digest) == step
    # ...but not two steps later.
    assert match_step(secret, expected, step + 2, 1, digits=8, digest=digest) is None


def test_the_digest_matters() -> None:
    # The SHA1 code at T=59 is not what SHA256 gives for the same seed and step.
    assert code_at(b32(SEEDS["sha1"]), 1, digits=8, digest="sha256") != "94287082"


def test_default_is_six_digit_sha1_as_authenticator_apps_use() -> None:
    # RFC 4226 truncation: the 6-digit code is the last 6 digits of the 8-digit one.
    assert code_at(b32(SEEDS["sha1"]), 1) == "287082"
