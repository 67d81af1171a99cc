"""Finding English left in a Russian page or message: the Latin-letter words a reader sees.

What is read: the text between tags, and the attributes a person sees or hears (``title``,
``aria-label``, ``placeholder``, ``alt``, a button's ``value``). What is not: scripts, the
``<code>`` and ``<pre>`` elements (codes, keys, receipts, addresses) and the values of
fields. E-mail addresses, URLs, codes and the names below are taken out first.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Names that stay as they are in a Russian text: the product and the issuer, the
# channels, authenticator apps and the platforms they run on, the languages' own names.
ALLOWED = frozenset({
    "StepUp", "SMS", "WhatsApp", "Telegram", "Google", "Microsoft", "Authenticator",
    "Authy", "Aegis", "FreeOTP", "Ente", "Auth", "Bitwarden", "1Password", "Duo", "Mobile", "Apple",
    "iPhone", "iPad", "iOS", "Android", "Windows", "macOS", "Linux", "Chrome", "Firefox",
    "Safari", "Edge", "English", "IP", "QR", "UTC", "API", "BTC", "EUR", "USD", "RUB",
    "ID", "OK", "Play", "App", "Store", "Passwords", "Keychain", "YubiKey", "Apps",
    "JavaScript",
})

URL = re.compile(r"\b(?:https?|otpauth)://\S+|\bwww\.\S+|(?<!\w)/[\w./-]+")
EMAIL = re.compile(r"[\w.+*-]+@[\w-]+(?:\.[\w-]+)+")
# A code, key or hash: a word with digits in it, or a long run of capitals and digits.
CODE = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]+\b")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
SEEN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style", "code", "pre", "template"):
            self._skip += 1
        for name in SEEN_ATTRIBUTES:
            if a.get(name):
                self.parts.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.parts.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code", "pre", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def latin_words(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The Latin-letter words of ``text`` that are neither allowed names nor codes."""
    text = URL.sub(" ", text)
    text = EMAIL.sub(" ", text)
    text = CODE.sub(" ", text)
    words = (w.strip("-'’") for w in WORD.findall(text))  # "QR-код" → "QR"
    return [w for w in words if w and w not in ALLOWED | allowed]


def english_in(html: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The English words a Russian reader of ``html`` would meet."""
    return latin_words(visible_text(html), allowed)
