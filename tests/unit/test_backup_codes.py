"""Backup codes: alphabet, printed format and the normalisation of what users type."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from stepup.domain.codes import (
    BACKUP_ALPHABET,
    BACKUP_CODE_LENGTH,
    format_backup_code,
    new_backup_code,
    normalise_backup_code,
)

FORMAT = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")
codes = st.text(alphabet=BACKUP_ALPHABET, min_size=BACKUP_CODE_LENGTH,
                max_size=BACKUP_CODE_LENGTH)


def test_alphabet_is_crockford_base32() -> None:
    assert len(BACKUP_ALPHABET) == 32
    assert len(set(BACKUP_ALPHABET)) == 32
    for misreadable in "ilou":
        assert misreadable not in BACKUP_ALPHABET
    assert BACKUP_ALPHABET.lower() == BACKUP_ALPHABET


def test_new_codes_are_formatted_xxxxx_xxxxx_and_distinct() -> None:
    made = [format_backup_code(new_backup_code()) for _ in range(200)]
    assert all(FORMAT.match(c) for c in made), made
    assert len(set(made)) == len(made)
    # Every symbol of the alphabet turns up across 2,000 random symbols.
    assert set("".join(made).replace("-", "")) == set(BACKUP_ALPHABET)


def test_normalisation_of_typed_forms() -> None:
    assert normalise_backup_code("abcde-12345") == "abcde12345"
    assert normalise_backup_code("ABCDE-12345") == "abcde12345"
    assert normalise_backup_code("abcde12345") == "abcde12345"
    assert normalise_backup_code("  abc de-123 45 ") == "abcde12345"
    assert normalise_backup_code("ab\tcde\n12345") == "abcde12345"
    # Look-alikes typed by the user are read as the symbol on the paper.
    assert normalise_backup_code("IiLlO-oabcd") == "111100abcd"


def test_what_cannot_be_a_backup_code() -> None:
    for typed in ("", "abcd-12345", "abcdef-123456", "abcde-1234u", "abcde_12345",
                  "abcde-1234!", "абвгд-12345", "abcde-１２３４５"):
        assert normalise_backup_code(typed) is None, typed


@given(codes)
def test_formatted_code_round_trips(code: str) -> None:
    printed = format_backup_code(code)
    assert FORMAT.match(printed)
    assert normalise_backup_code(printed) == code


@given(codes, st.sampled_from([str.upper, str.lower, str.swapcase]),
       st.booleans(), st.lists(st.sampled_from([" ", "  ", "\t"]), max_size=3))
def test_round_trip_whatever_the_case_dash_and_spaces(code: str, case: object, dash: bool,
                                                      spaces: list[str]) -> None:
    assert callable(case)
    typed = str(case(format_backup_code(code) if dash else code))
    for i, space in enumerate(spaces):
        at = (i * 4) % (len(typed) + 1)
        typed = typed[:at] + space + typed[at:]
    assert normalise_backup_code(typed) == code


@given(st.text(max_size=30))
def test_normalise_gives_a_canonical_code_or_none(typed: str) -> None:
    out = normalise_backup_code(typed)
    if out is not None:
        assert len(out) == BACKUP_CODE_LENGTH
        assert set(out) <= set(BACKUP_ALPHABET)
        assert normalise_backup_code(out) == out  # idempotent
        assert normalise_backup_code(format_backup_code(out)) == out
