"""Translations for the web layer: which language a request gets, and the times it shows.

The catalogues (``locales/<lang>/LC_MESSAGES/messages.po``) are compiled in memory by
:mod:`stepup.i18n`, the one loader that pages and sent messages share; no ``.mo`` file is
kept. Every user-visible string goes through gettext. English is the source language; a
language without a catalogue falls back to English.

Which language a page gets (:func:`page_language`), first match wins:

1. an explicit choice made on this request: ``?lang=`` (the switcher's links, links in
   messages);
2. the account's language, when someone is logged in (the switcher of a logged-in user is
   a POST form that saves it: ``POST /settings/language``);
3. the choice this browser made before (the ``stepup_lang`` cookie the links set) —
   which logging in saves to the account when it differs (web/portal/auth.py), so the
   pages after login stay in the language chosen before it;
4. the browser's Accept-Language;
5. English.

Times are shown in the visitor's time zone: ``static/portal.js`` puts the browser's IANA
zone name in the ``tz`` cookie; a name that is not a known zone is ignored, and without
one the page says it shows UTC. The activity page names the zone once, above its list;
a page with a time or two names it beside each (:func:`format_when_named`: the
withdrawal's deadline, remembered devices, a recovery request's date).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import cache
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, available_timezones

from babel.dates import format_date, format_time, get_datetime_format, get_timezone_location

from stepup.i18n import DEFAULT, LANGUAGES, LOCALES, translations

__all__ = ["DEFAULT", "LANGUAGES", "LOCALES", "TZ_COOKIE", "client_zone", "format_when",
           "format_when_named", "language_url", "page_language", "pick_language",
           "translations", "zone_city"]

# The browser's time zone, as portal.js writes it (not HttpOnly: the script sets it).
TZ_COOKIE = "tz"
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}")


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


def page_language(*, explicit: str | None, account: str | None, remembered: str | None,
                  accept_language: str | None) -> str:
    """The page's language: explicit choice > account > this browser's earlier choice >
    Accept-Language > English (see the module's docstring)."""
    return pick_language(explicit, account, remembered, accept_language=accept_language)


def language_url(path: str, query: list[tuple[str, str]], language: str) -> str:
    """This page in another language: the same path and query, ``lang`` replaced."""
    kept = [(k, v) for k, v in query if k != "lang"]
    return path + "?" + urlencode([*kept, ("lang", language)])


# --- time zones ----------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def client_zone(name: str | None) -> ZoneInfo | None:
    """The zone the browser named (an IANA name from the tz database), or None."""
    if not name or len(name) > 64 or not _ZONE_NAME.fullmatch(name) or name not in _zones():
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def format_when(value: datetime, zone: tzinfo | None, language: str) -> str:
    """An instant as people of ``language`` write it, in ``zone`` (UTC if None):
    "Nov 22, 2026, 1:00 PM", «22 нояб. 2026 г., 13:00»."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone or UTC)
    pattern = str(get_datetime_format("medium", locale=language))
    return (pattern.replace("{1}", format_date(local, "medium", locale=language))
            .replace("{0}", format_time(local, "short", locale=language)))


def zone_city(zone: ZoneInfo, language: str) -> str:
    """The zone's city in ``language`` ("Berlin", «Берлин»), else its IANA name."""
    try:
        city = str(get_timezone_location(zone, locale=language, return_city=True))
    except (LookupError, ValueError):
        return zone.key
    return city or zone.key


def format_when_named(value: datetime, zone: ZoneInfo, language: str) -> str:
    """An instant in ``zone``, the zone named beside it: "Dec 2, 2026, 10:24 AM
    (Moscow)", «2 дек. 2026 г., 10:24 (Москва)»."""
    return f"{format_when(value, zone, language)} ({zone_city(zone, language)})"
