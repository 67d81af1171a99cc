"""Destructive actions look secondary (issue 16, item 9): Disable, Forget and Forget all
devices carry the outlined danger style (``button-danger``), never the filled primary one
(``button-primary``) that marks the page's main action — in English and in Russian, on the
methods page and on the Disable page."""

from __future__ import annotations

import re

import httpx
import pytest

from stepup.domain.clock import FrozenClock
from stepup.i18n import gettext
from tests.pages.helpers import enable_totp, get, log_out, sign_up
from tests.pages.test_devices import second_factor

DESTRUCTIVE = ("Disable", "Forget", "Forget all devices")
CONTROL = re.compile(r"<(a|button)\b([^>]*)>(.*?)</\1>", flags=re.S)


def _destructive(html: str, lang: str) -> dict[str, list[str]]:
    """Each destructive action's word → the classes of the links and buttons it names."""
    words = {gettext(lang, w): w for w in DESTRUCTIVE}
    found: dict[str, list[str]] = {}
    for m in CONTROL.finditer(html):
        visible = re.sub(r'<span class="visually-hidden">.*?</span>', "", m.group(3),
                         flags=re.S)
        text = re.sub(r"<[^>]+>", "", visible).strip()
        cls = re.search(r'class="([^"]*)"', m.group(2))
        if text in words:
            found.setdefault(words[text], []).append(cls.group(1) if cls else "")
    return found


def _secondary(classes: list[str]) -> bool:
    return all("button-danger" in c.split() and "button-primary" not in c.split()
               for c in classes)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_disable_and_forget_are_styled_as_danger(client: httpx.AsyncClient,
                                                       clock: FrozenClock, lang: str) -> None:
    await sign_up(client, language=lang)
    secret = await enable_totp(client, clock)
    await log_out(client)
    await second_factor(client, secret, clock, remember=True)  # a remembered device

    found = _destructive(await get(client, "/settings/methods"), lang)
    assert set(found) == set(DESTRUCTIVE), found  # each is there to be checked
    for word, classes in found.items():
        assert _secondary(classes), f"{word!r} ({lang}) is styled {classes}"

    found = _destructive(await get(client, "/settings/methods/totp/disable"), lang)
    assert found.get("Disable"), found
    assert _secondary(found["Disable"]), found
