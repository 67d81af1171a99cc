"""Translations (Babel): the catalogues under ``locales/`` compiled in memory at start.

Every user-visible string goes through gettext. English is the source language; a
language without a catalogue falls back to English.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = Path(__file__).resolve().parents[3] / "locales"
LANGUAGES = ("en", "ru")
DEFAULT = "en"


@cache
def translations(language: str) -> NullTranslations:
    po = LOCALES / language / "LC_MESSAGES" / "messages.po"
    if language not in LANGUAGES or not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def pick_language(*candidates: str | None, accept_language: str | None = None) -> str:
    for c in candidates:
        if c in LANGUAGES:
            return c
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT
