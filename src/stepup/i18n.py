"""Translations (Babel): the catalogues under ``locales/`` compiled in memory.

One loader for pages and messages alike. English is the source language; a language
without a catalogue falls back to English.
"""

from __future__ import annotations

import io
import sys
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations


def locales_dir(candidates: tuple[Path, ...] | None = None) -> Path:
    """``locales/`` of a source checkout (editable install), else the copy an installed
    wheel puts under ``<prefix>/share/stepup/locales``."""
    for path in candidates or (Path(__file__).resolve().parents[2] / "locales",
                               Path(sys.prefix) / "share" / "stepup" / "locales"):
        if (path / "ru" / "LC_MESSAGES" / "messages.po").is_file():
            return path
    raise RuntimeError("StepUp's translations (locales/) are missing: reinstall StepUp")


LOCALES = locales_dir()
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


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def N_(message: str) -> str:
    return message
