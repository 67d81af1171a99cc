"""Russian finished: every string of the template translated, in one term per concept,
with no English left in it and no name spliced into a sentence; every method words its
own sentences; sent messages and security notices read in Russian.

The pages themselves are read in tests/pages/test_russian_pages.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from stepup.delivery import messages, notices
from stepup.i18n import LOCALES, translations
from stepup.methods import registry
from stepup.methods.base import SENDING_SENTENCES, SENTENCES
from stepup.methods.webauthn.method import default_name
from tests.pages.latin import latin_words

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
RU = translations("ru")


def catalog(name: str, locale: str | None = None) -> Catalog:
    with (LOCALES / name).open("rb") as fh:
        return read_po(fh, locale=locale)


POT = catalog("messages.pot")
RU_PO = catalog("ru/LC_MESSAGES/messages.po", "ru")
EN_PO = catalog("en/LC_MESSAGES/messages.po", "en")
IDS = sorted(str(m.id if isinstance(m.id, str) else m.id[0]) for m in POT if m.id)


def _plural_ids(cat: Catalog) -> set[str]:
    # domain/texts.py marks both forms with N_: the template lists the plural form as an
    # id of its own, which the catalogue holds as the msgid_plural of the singular.
    return {m.id[1] for m in cat if m.id and not isinstance(m.id, str)}


def _entry(cat: Catalog, msgid: str) -> Message | None:
    return cat.get(msgid)


def _forms(m: Message) -> list[str]:
    return list(m.string) if isinstance(m.string, tuple | list) else [m.string]


@pytest.mark.parametrize("msgid", IDS)
def test_every_string_has_a_russian_translation(msgid: str) -> None:
    entry = _entry(RU_PO, msgid)
    if entry is None:
        assert msgid in _plural_ids(RU_PO), f"no Russian entry for {msgid!r}"
        return
    assert not entry.fuzzy, f"fuzzy Russian for {msgid!r}"
    forms = _forms(entry)
    plural = not isinstance(entry.id, str)
    assert len(forms) == (3 if plural else 1), msgid  # один, два, пять
    assert all(forms), f"an empty Russian form for {msgid!r}"
    english = set(PLACEHOLDER.findall(msgid))
    for form in forms:
        assert set(PLACEHOLDER.findall(form)) <= english | {"num"}, (msgid, form)


def test_the_english_catalogue_holds_nothing_fuzzy_or_half_done() -> None:
    """English is the source language: an entry is either empty (the msgid is shown) or
    whole; a fuzzy or half-filled plural would show the wrong form."""
    for m in EN_PO:
        if not m.id:
            continue
        assert not m.fuzzy, f"fuzzy English entry {m.id!r}"
        forms = _forms(m)
        assert all(forms) or not any(forms), m.id
    en = translations("en")
    for m in POT:
        if m.id and not isinstance(m.id, str):
            assert en.ngettext(m.id[0], m.id[1], 1) == m.id[0]
            assert en.ngettext(m.id[0], m.id[1], 5) == m.id[1]


# Latin words a Russian string may hold: names, units and the words of the API (codes,
# headers) that a client's developer reads as they are.
CATALOGUE_ALLOWED = frozenset({"PIN", "Idempotency-Key", "HTTP", "JSON", "TOTP", "URL",
                               "ISSUER", "HTTPS", "RFC", "WebAuthn", "Android", "iOS",
                               "JavaScript", "Bitcoin", "Ethereum", "IBAN"})


@pytest.mark.parametrize("msgid", IDS)
def test_no_english_is_left_in_a_russian_string(msgid: str) -> None:
    entry = _entry(RU_PO, msgid)
    if entry is None:
        return
    for form in _forms(entry):
        words = latin_words(PLACEHOLDER.sub(" ", form), CATALOGUE_ALLOWED)
        assert not words, (msgid, form, words)


# One term per concept: the wrong ones and what to say instead.
WRONG_TERMS = {
    r"PIN-код|\bPIN\b": "ПИН-код",
    r"[Зз]ащитн\w+ код": "код подтверждения",
    r"\b[Ee]-?mail\b": "электронная почта",
    r"passkey": "ключ доступа",
    r"\bSMS": "СМС",
    r"(?<![Пп]риложени[еяюи]-)(?<![Пп]риложением-)аутентификатор": "приложение-аутентификатор",
    r"[Зз]апасн\w+ код": "резервный код",
}


@pytest.mark.parametrize("pattern", sorted(WRONG_TERMS))
def test_one_term_per_concept(pattern: str) -> None:
    wrong = [(m.id, form) for m in RU_PO if m.id for form in _forms(m)
             if re.search(pattern, PLACEHOLDER.sub(" ", form))]
    assert not wrong, f"say «{WRONG_TERMS[pattern]}»: {wrong}"


def test_russian_numbers_have_a_decimal_comma() -> None:
    """«0,25», never «0.25» (the amount field reads either)."""
    points = [form for m in RU_PO if m.id for form in _forms(m) if re.search(r"\d\.\d", form)]
    assert not points, points


# A name spliced after a colon or in parentheses: «Включить: СМС», «код (%(method)s)».
GLUED = re.compile(r"^(Включить|Отключить|для подключения|для изменения или отключения"
                   r"|Включён способ входа|Отключён способ входа|Включить защиту"
                   r"|Отключить защиту): %\(|\(%\(method\)s\)")


def test_no_name_is_glued_to_a_sentence() -> None:
    glued = [form for m in RU_PO if m.id for form in _forms(m) if GLUED.search(form)]
    assert not glued, glued


# --- each method's own sentences -----------------------------------------------------------


@pytest.mark.parametrize("d", registry.descriptors(), ids=lambda d: d.type)
def test_every_method_words_its_own_sentences(d: Any) -> None:
    wanted = set(SENTENCES) | (set(SENDING_SENTENCES) if d.sends_codes else set())
    assert wanted <= set(d.sentences), f"{d.type}: no {sorted(wanted - set(d.sentences))}"
    for key, text in d.sentences.items():
        assert "%(method)s" not in text, (d.type, key)  # whole: no name spliced in
        russian = RU.gettext(text)
        assert russian != text, f"{d.type}.{key}: no Russian for {text!r}"
        assert set(PLACEHOLDER.findall(russian)) == set(PLACEHOLDER.findall(text))


def test_english_agrees_with_the_method() -> None:
    """The bug that started this: "Backup codes is enabled"."""
    said = {d.type: d.sentences["enabled"] for d in registry.descriptors()}
    assert said["backup_codes"] == "Backup codes are enabled."
    assert said["totp"] == "The authenticator app is enabled."
    assert RU.gettext(said["totp"]) == "Приложение-аутентификатор включено."
    assert RU.gettext(said["sms"]) == "СМС-коды включены."


# --- messages and notices --------------------------------------------------------------------

MESSAGE_ALLOWED = frozenset({"StepUp", "SMS", "WhatsApp", "Telegram", "IP", "UTC", "BTC",
                             "Acme", "Chrome", "Linux", "EUR"})
PURPOSES = ["login", "operation:op1", *(f"{kind}:{d.type}" for d in registry.sending_codes()
                                        for kind in ("enroll", "manage"))]


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("channel", [d.type for d in registry.sending_codes()])
def test_code_messages_are_russian(channel: str, purpose: str) -> None:
    details = {"amount": "1234.5", "currency": "EUR", "destination": "DE89370400440532013000"}
    m = messages.code_message(channel=channel, to="x", code="042917", purpose=purpose,
                              language="ru", issuer="StepUp", public_url="https://id.acme.test",
                              ttl_minutes=5, details=details)
    for text in (m.body, m.subject or ""):
        text = re.sub(r"@\S+ #\d+", "", text)  # the autofill line: the host and the code
        assert not latin_words(text, MESSAGE_ALLOWED), (channel, purpose, text)
    if purpose.startswith("operation"):
        assert "1\xa0234,50 EUR" in m.body  # the amount as Russian writes numbers


NOTICE_DATA: dict[str, Any] = {
    "method": "sms", "after": {"login": True, "withdrawal": False}, "remaining": 3,
    "device": "Chrome 126, Linux", "seconds": 900, "name": "Ключ доступа 2",
    "effective_at": "2026-11-23T12:00:00+00:00", "at": "2026-11-22T12:00:00+00:00",
    "ip": "203.0.113.7", "cancel_url": "https://id.acme.test/recovery/cancel/t"}
KINDS = ["method.enabled", "method.disabled", "method.protection_switched", "passkey.added",
         "passkey.removed", "backup_codes.regenerated", "backup_codes.low",
         "login.new_device", "account.locked", "method.locked", "account.email_changed",
         "account.pin_changed", "recovery.requested", "recovery.approved",
         "recovery.rejected", "recovery.cancelled", "recovery.completed"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["sms", "totp", "backup_codes", "webauthn", "pin"])
def test_notices_are_russian(kind: str, method: str) -> None:
    for channel in ("sms", "email"):
        m = notices.notice_message(kind=kind, channel=channel, to="x", language="ru",
                                   issuer="StepUp", data={**NOTICE_DATA, "method": method})
        for text in (m.body, m.subject or ""):
            assert not latin_words(text, MESSAGE_ALLOWED), (kind, method, text)
        # The time as Russian writes it (Babel puts narrow no-break spaces in it).
        assert "22 нояб. 2026 г., 12:00 UTC" in re.sub(r"[\xa0\u202f]", " ", m.body)


def test_a_lock_of_the_pin_is_its_own_sentence() -> None:
    text = notices.what_happened("method.locked", "ru", {"method": "pin", "seconds": 900})
    assert text == "ПИН-код заблокирован на 15 мин из-за слишком большого числа неверных попыток."


# --- default names ----------------------------------------------------------------------------


def test_a_new_passkey_is_named_in_the_users_language() -> None:
    assert default_name("en", set()) == "Passkey 1"
    assert default_name("ru", {"Ключ доступа 1"}) == "Ключ доступа 2"
    assert default_name("ru", {"Ключ доступа 2", "Passkey 1"}) == "Ключ доступа 3"
    assert default_name(None, set()) == "Passkey 1"


# --- numbers and times ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "currency", "language", "shown"), [
    ("1234.5", "EUR", "ru", "1 234,50"), ("1234.5", "EUR", "en", "1234.50"),
    ("0.00012345", "BTC", "ru", "0,00012345"), ("150", "JPY", "ru", "150"),
    ("12", "USDT", "ru", "12"), ("not a number", "EUR", "ru", "not a number")])
def test_amounts_keep_their_decimals_in_the_languages_form(value: str, currency: str,
                                                           language: str, shown: str) -> None:
    from stepup.formats import amount

    assert re.sub(r"[\xa0\u202f]", " ", amount(value, currency, language)) == shown


def test_times_in_the_languages_form() -> None:
    from datetime import datetime

    from stepup.formats import moment

    at = datetime(2026, 11, 22, 12, 5, 7)  # naive: read as UTC, as the store writes it
    assert moment(at, "en") == "2026-11-22 12:05 UTC"
    assert re.sub(r"[\xa0\u202f]", " ", moment(at, "ru")) == "22 нояб. 2026 г., 12:05 UTC"
    assert moment(at, "ru", seconds=True).endswith("12:05:07 UTC")
    assert moment(None, "ru") == "" and moment("garbled", "ru") == "garbled"
