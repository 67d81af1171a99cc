"""The catalogue of error texts (domain/texts.py) and the loading of the operator adapter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from stepup import adapter
from stepup.config import ConfigurationError, Settings
from stepup.domain import errors, texts
from stepup.domain.errors import DomainError
from stepup.domain.texts import ENGLISH, ERRORS, error_text
from stepup.i18n import translations

RU = translations("ru")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def every_error(cls: type[DomainError] = DomainError) -> list[type[DomainError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in every_error(child))]


@pytest.mark.parametrize("cls", every_error(), ids=lambda c: c.__name__)
def test_every_error_code_has_a_text(cls: type[DomainError]) -> None:
    assert cls.code in ERRORS, f"{cls.__name__}: no text for {cls.code!r} in domain/texts.py"


def test_every_situation_belongs_to_a_code() -> None:
    codes = {cls.code for cls in every_error()}
    for key in ERRORS:
        assert key.partition(".")[0] in codes, key


@pytest.mark.parametrize("key", sorted(ERRORS))
def test_every_text_has_a_russian_translation(key: str) -> None:
    text = ERRORS[key]
    if text.plural is None:
        forms = [(text.message, RU.gettext(text.message))]
    else:
        forms = [(text.message if n == 1 else text.plural,
                  RU.ngettext(text.message, text.plural, n)) for n in (1, 3, 5)]
        assert len({ru for _, ru in forms}) == 3, f"{key}: not every Russian plural form"
    for english, russian in forms:
        assert russian != english, f"no Russian for {key!r}: {english!r}"
        assert set(PLACEHOLDER.findall(russian)) == set(PLACEHOLDER.findall(english)), key
        assert not re.search(r"[A-Za-z]{3,}", re.sub(
            r"%\(\w+\)[sd]|Idempotency-Key|API|SMS", "", russian)), (key, russian)
        # One term per concept: «ПИН-код», «код подтверждения».
        assert not re.search(r"PIN|[Зз]ащитн", russian), (key, russian)


@pytest.mark.parametrize("key", [k for k in ERRORS if k.startswith(
    ("validation_error.pin", "validation_error.password"))])
def test_the_pin_and_password_rules_are_told_in_russian(key: str) -> None:
    """Not the bare «Запрос неверен»: the reason, as in English."""
    err = errors.ValidationFailed(situation=key.partition(".")[2],
                                  values={"min": 12, "max": 128}, field="password")
    assert error_text(err, RU) != RU.gettext(ERRORS["validation_error"].message)
    assert error_text(err, ENGLISH) == err.detail


def test_the_ids_are_in_the_catalogue_files_the_translators_read() -> None:
    """Every entry is marked with N_ in the module pybabel extracts from."""
    source = Path(texts.__file__).read_text(encoding="utf-8")
    assert source.count("N_(") >= len(ERRORS)


def test_a_situation_picks_its_text_and_fills_it() -> None:
    err = errors.DeliveryFailed(situation="channel", values={"channel": "SMS"})
    assert err.detail == ("We could not send the code by SMS right now. Nothing was changed: "
                          "please try again in a few minutes, or use another method.")
    assert error_text(err, RU).startswith("Сейчас не удалось отправить код по каналу «СМС».")
    by_mail = errors.DeliveryFailed(situation="channel", values={"channel": "e-mail"})
    assert "по каналу «электронная почта»" in error_text(by_mail, RU)
    assert "by e-mail right now" in error_text(by_mail, ENGLISH)
    assert errors.ValidationFailed(situation="phone_premium", field="phone").detail == (
        "Codes cannot be sent to premium-rate or shared-cost numbers.")


def test_an_unknown_situation_falls_back_to_the_code() -> None:
    assert errors.Conflict(situation="nonesuch").detail == ERRORS["conflict"].message
    # A situation whose value was not given: the code's text, not a KeyError.
    assert errors.DeliveryFailed(situation="channel").detail == (
        ERRORS["delivery_failed"].message)


@pytest.mark.parametrize(("minutes", "en", "ru"), [
    (1, "about 1 minute ahead", "на 1 минуту"), (5, "about 5 minutes ahead", "на 5 минут"),
    (-2, "about 2 minutes behind", "на 2 минуты")])
def test_the_clock_drift_is_told_with_plural_forms(minutes: int, en: str, ru: str) -> None:
    err = errors.InvalidCode(extra={"clock_drift_minutes": minutes})
    assert en in err.detail and en in error_text(err, ENGLISH)
    assert ru in error_text(err, RU)


def test_waits_are_told_in_the_unit_that_fits() -> None:
    assert errors.ResendTooSoon(retry_after=1).detail == (
        "Please wait 1 second before asking for a new code.")
    assert "Подождите 15 секунд" in error_text(errors.ResendTooSoon(retry_after=15), RU)
    assert errors.SendCapReached(retry_after=3000).detail.startswith(
        "Too many codes were sent. Try again in 50 minutes")
    assert errors.MethodLocked(retry_after=61).detail == (
        "Too many wrong attempts: try again in 2 minutes.")
    assert errors.MethodLocked(situation="pin", retry_after=900).detail == (
        "Too many wrong PINs: the PIN is locked for 15 minutes.")
    # Any other wait, where a code was asked for, is told as a wait for a new code.
    quick = texts.as_send_refusal(errors.RateLimited("Too many passkey requests.",
                                                     retry_after=30))
    assert quick.detail == "Please wait 30 seconds before asking for a new code."
    slow = texts.as_send_refusal(errors.RateLimited(retry_after=600))
    assert slow.detail.startswith("Too many codes were sent. Try again in 10 minutes")


def test_a_sentence_of_the_raise_site_is_english_only() -> None:
    """A raise site's own sentence (one only it can say) is the English text; another
    language gets the entry of its situation, else of its code."""
    err = errors.ValidationFailed("The e-mail address is not valid: no @ sign.",
                                  field="email", situation="email")
    assert error_text(err, ENGLISH) == err.detail == err.own_detail
    assert error_text(err, RU) == RU.gettext("The e-mail address is not valid.")
    plain = errors.NotFound("No such recovery request.")
    assert error_text(plain, RU) == RU.gettext(ERRORS["not_found"].message)
    assert error_text(plain, translations("de")) == "No such recovery request."


def test_the_default_adapter_tells_the_catalogue() -> None:
    a = adapter.Adapter(Settings())
    err = errors.PinInvalid()
    assert a.describe_error(err, "en") == "The PIN is not correct."
    assert a.describe_error(err, "ru") == RU.gettext("The PIN is not correct.")


def test_an_override_may_use_the_placeholders() -> None:
    class Mine(adapter.Adapter):
        error_messages: ClassVar[Mapping[str, str]] = {
            "method_locked.wait": "Locked: %(num)d min.", "invalid_code": "Wrong: %(nonesuch)s"}

    a = Mine(Settings())
    assert a.describe_error(errors.MethodLocked(retry_after=600), "ru") == "Locked: 10 min."
    # An override naming a value the error does not carry falls back to StepUp's text.
    assert a.describe_error(errors.InvalidCode(), "en") == "The security code is not valid."


class NotAnAdapter:
    pass


@pytest.mark.parametrize(("spec", "says"), [
    ("tests.unit.nonesuch_module:Adapter", "cannot import"),
    (f"{__name__}:NotAnAdapter", "not a subclass of stepup.adapter.Adapter"),
    (f"{__name__}:Missing", "not a subclass"),
    ("no_colon_here", "expected 'package.module:Class'"),
])
def test_a_bad_adapter_refuses_to_start(spec: str, says: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPUP_ADAPTER", spec)
    with pytest.raises(ConfigurationError, match="STEPUP_ADAPTER") as info:
        adapter.load(Settings())
    assert says in str(info.value)


def test_no_adapter_configured_is_the_default() -> None:
    assert type(adapter.load(Settings(adapter=None))) is adapter.Adapter
