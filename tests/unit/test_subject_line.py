"""E-mail subjects are cut at a word boundary, never inside a word, and say they were."""

from __future__ import annotations

import pytest

from stepup.delivery.base import SUBJECT_MAX, subject_line
from stepup.delivery.notices import notice_message, what_happened
from stepup.i18n import gettext


def test_a_short_subject_is_left_alone() -> None:
    assert subject_line("StepUp security notice: PIN changed.") == \
        "StepUp security notice: PIN changed."


def test_a_long_subject_ends_at_a_word_with_an_ellipsis() -> None:
    text = "StepUp security notice: " + " ".join(["withdrawal"] * 20)
    cut = subject_line(text)
    assert len(cut) <= SUBJECT_MAX and cut.endswith("withdrawal…")
    assert text.startswith(cut[:-1])
    # The character after the cut in the original is a space: no word was split.
    assert text[len(cut) - 1] == " "


@pytest.mark.parametrize("limit", range(10, 40))
def test_no_limit_cuts_a_word(limit: int) -> None:
    text = "Sign-in method disabled: Authenticator app, passkey and backup codes."
    cut = subject_line(text, limit)
    assert len(cut) <= limit
    kept = cut[:-1]
    assert text.startswith(kept) and text[len(kept)] in " ,:", (limit, cut)


def test_no_dangling_punctuation_before_the_ellipsis() -> None:
    assert subject_line("Acme Broker security notice: everything", 30) == \
        "Acme Broker security notice…"


def test_one_word_longer_than_the_limit_is_cut_where_it_must() -> None:
    assert subject_line("x" * 200, 20) == "x" * 19 + "…"


def test_a_subject_is_one_line() -> None:
    assert subject_line("New\nline\r\nand  spaces") == "New line and spaces"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_notice_of_an_app_with_a_long_name_keeps_whole_words(language: str) -> None:
    app = ("Acme International Brokerage and Custody Services for Retail and Institutional "
           "Clients of the Northern Hemisphere")
    data = {"app_name": app, "app_url": "https://acme.example", "remaining": 2,
            "at": "2026-11-22T12:00:00+00:00"}
    m = notice_message(kind="backup_codes.low", channel="email", to="jane@example.com",
                       language=language, issuer="StepUp", data=data)
    whole = gettext(language, "%(issuer)s security notice: %(what)s") % {
        "issuer": app, "what": what_happened("backup_codes.low", language, data)}
    assert len(whole) > SUBJECT_MAX  # the notice is cut…
    assert m.subject is not None and len(m.subject) <= SUBJECT_MAX
    kept = m.subject.removesuffix("…")
    assert kept != m.subject and whole.startswith(kept)
    assert whole[len(kept)] in " .,:;", m.subject  # …after a word, not inside one
