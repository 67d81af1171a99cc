"""The catalogues hold exactly what the code says. A fresh extraction from the sources
(as babel.cfg configures it) gives the ids of the committed template, and each
language's catalogue holds those ids and no others: a string added to a page or a
message cannot go untranslated unnoticed (tests/unit/test_russian.py checks every id of
the template), and a string the code no longer says leaves nothing behind.

When this fails: ``python scripts/sync_catalogues.py`` drops what the code no longer
says and appends what it lacks; then translate what it appended in ``locales/ru``.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from stepup.i18n import LOCALES

ROOT = Path(__file__).resolve().parents[2]


def _ids(cat: Catalog) -> set[str]:
    """Every id, both forms of a plural entry included (domain/texts.py marks each form
    with ``N_``: the template lists them as two ids, a catalogue as one entry)."""
    found: set[str] = set()
    for m in cat:
        if m.id:
            found.update((m.id,) if isinstance(m.id, str) else m.id)
    return found


def _read(name: str) -> Catalog:
    with (LOCALES / name).open("rb") as fh:
        return read_po(fh, abort_invalid=True)  # a broken entry fails, not warns


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map):
        found.update(m for m in ((message,) if isinstance(message, str) else message) if m)
    return found


def test_the_template_is_what_the_sources_say() -> None:
    template, sources = _ids(_read("messages.pot")), _extracted()
    assert sorted(sources - template) == [], "said in the code, missing from the template"
    assert sorted(template - sources) == [], "in the template, said nowhere in the code"


def test_each_catalogue_holds_the_templates_ids_and_no_others() -> None:
    template = _ids(_read("messages.pot"))
    for locale in ("en", "ru"):
        held = _ids(_read(f"{locale}/LC_MESSAGES/messages.po"))
        assert sorted(template - held) == [], f"{locale}: missing"
        assert sorted(held - template) == [], f"{locale}: no longer in the template"
