"""The localised texts of security-code messages (en, ru)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stepup.delivery import messages
from stepup.delivery.base import OutgoingMessage
from stepup.delivery.messages import code_message, purpose_text
from stepup.i18n import LOCALES, translations

PURPOSES = ["login", "enroll:sms", "enroll:email", "enroll:whatsapp", "manage:sms",
            "manage:email", "manage:whatsapp", "operation:op1"]


def message(channel: str, purpose: str = "login", language: str = "en",
            details: dict[str, str] | None = None) -> OutgoingMessage:
    return code_message(channel=channel, to="+79161234567" if channel != "email"
                        else "jane@example.com", code="042917", purpose=purpose,
                        language=language, issuer="StepUp", public_url="https://id.example.com",
                        ttl_minutes=5, details=details)


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("purpose", PURPOSES)
def test_sms_ends_with_the_autofill_line_and_has_no_link(language: str, purpose: str) -> None:
    m = message("sms", purpose, language)
    lines = m.body.splitlines()
    assert lines[-1] == "@id.example.com #042917"
    assert "StepUp" in lines[0] and "042917" in lines[0]
    assert "http" not in m.body and "www." not in m.body
    assert "id.example.com" not in "\n".join(lines[:-1])  # the host only on the last line
    assert m.channel == "sms" and m.to == "+79161234567" and m.code == "042917"
    assert m.subject is None and m.html is None


def test_the_autofill_host_comes_from_the_public_url() -> None:
    m = code_message(channel="sms", to="+79161234567", code="123456", purpose="login",
                     language="en", issuer="Acme", public_url="https://portal.acme.test:8443/x",
                     ttl_minutes=5)
    assert m.body.splitlines()[-1] == "@portal.acme.test #123456"


def test_english_texts_name_the_service_and_the_purpose() -> None:
    assert message("sms").body.splitlines()[0] == (
        "StepUp: 042917 is your security code to log in.")
    assert "to enable SMS codes" in message("sms", "enroll:sms").body
    assert "to enable WhatsApp codes" in message("whatsapp", "enroll:whatsapp").body
    assert "to change or disable e-mail codes" in message("email", "manage:email").body
    assert "It expires in 5 minutes" in message("sms").body


def test_russian_texts() -> None:
    sms = message("sms", "login", "ru")
    assert sms.body.splitlines()[0] == "StepUp: 042917 — ваш код подтверждения для входа."
    assert "Код действует 5 мин." in sms.body
    assert sms.language == "ru"
    # Whole sentences per method: never "для подключения: СМС-коды".
    assert "для включения СМС-кодов." in message("sms", "enroll:sms", "ru").body
    assert "для изменения или отключения кодов в WhatsApp." in message(
        "whatsapp", "manage:whatsapp", "ru").body
    mail = message("email", "login", "ru")
    assert mail.subject == "Код подтверждения StepUp для входа"
    assert "Если вы не запрашивали этот код" in mail.body
    assert not re.search(r"[A-Za-z]{4,}", mail.subject.replace("StepUp", ""))


@pytest.mark.parametrize("purpose", PURPOSES)
def test_no_english_is_left_in_russian_messages(purpose: str) -> None:
    for channel in ("sms", "whatsapp", "email"):
        m = message(channel, purpose, "ru")
        text = m.body.replace("StepUp", "").replace("id.example.com", "")
        text = text.replace("WhatsApp", "").replace("SMS", "")
        assert not re.search(r"[A-Za-z]{3,}", text), (channel, purpose, m.body)


def test_an_unknown_language_falls_back_to_english() -> None:
    assert "is your security code" in message("sms", "login", "de").body


def test_email_has_subject_text_and_html() -> None:
    m = message("email", "enroll:email")
    assert m.subject == "StepUp security code to enable e-mail codes"
    assert "042917" in m.body and m.html is not None and "042917" in m.html
    assert "If you did not ask for this code" in m.body


def test_html_is_escaped() -> None:
    m = code_message(channel="email", to="jane@example.com", code="111111", purpose="login",
                     language="en", issuer="<b>Acme & Co</b>", public_url="https://a.test",
                     ttl_minutes=5)
    assert m.html is not None
    assert "<b>Acme" not in m.html and "&lt;b&gt;Acme &amp; Co" in m.html


def test_whatsapp_carries_the_code_for_templates() -> None:
    m = message("whatsapp", "login", "ru")
    assert m.code == "042917" and m.language == "ru" and m.purpose == "login"
    assert "042917" in m.body and "@" not in m.body


def test_a_withdrawal_amount_is_written_as_the_language_writes_numbers() -> None:
    details = {"amount": "1234.5", "currency": "EUR", "destination": "DE89370400440532013000"}
    assert "1234.50 EUR" in purpose_text("en", "operation:op1", details)
    assert "1\xa0234,50 EUR" in purpose_text("ru", "operation:op1", details)
    tiny = {**details, "amount": "0.00012345", "currency": "BTC"}
    assert "0,00012345 BTC" in purpose_text("ru", "operation:op1", tiny)  # never rounded


def test_operation_purpose_shows_amount_and_the_whole_destination() -> None:
    details = {"amount": "250.00", "currency": "USDT",
               "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}
    text = purpose_text("en", "operation:op1", details)
    assert text == ("to confirm the withdrawal of 250.00 USDT to "
                    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    assert purpose_text("en", "operation:op1") == "to confirm an operation"


def test_every_message_text_has_a_russian_translation() -> None:
    source = Path(messages.__file__).read_text(encoding="utf-8")
    ids = re.findall(r'_\(\s*"((?:[^"\\]|\\.)*)"(?:\s*"((?:[^"\\]|\\.)*)")?', source)
    ids += [(m, "") for m in re.findall(r'N_\("([^"]+)"\)', source)]
    assert len(ids) >= 8
    ru = translations("ru")
    for first, second in ids:
        msgid = first + second
        assert ru.gettext(msgid) != msgid, f"no Russian for {msgid!r}"
    assert (LOCALES / "ru" / "LC_MESSAGES" / "messages.po").exists()
