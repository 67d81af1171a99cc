"""Translations for the web layer: which language a request gets.

The catalogues (``locales/<lang>/LC_MESSAGES/messages.po``) are compiled in memory by
:mod:`stepup.i18n`, the one loader that pages and sent messages share; no ``.mo`` file is
kept. Every user-visible string goes through gettext. English is the source language; a
language without a catalogue falls back to English.
"""

from __future__ import annotations

from stepup.i18n import DEFAULT, LANGUAGES, LOCALES, translations

__all__ = ["DEFAULT", "LANGUAGES", "LOCALES", "pick_language", "translations"]


def pick_language(*candidates: str | None, accept_language: str | None = None) -> str:
    """The first supported candidate, else the best Accept-Language match, else English."""
    for c in candidates:
        if c in LANGUAGES:
            return c
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            weighted.append((-quality, index, primary))
    return min(weighted)[2] if weighted else DEFAULT
