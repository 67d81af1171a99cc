#!/usr/bin/env python3
"""Bring locales/ in line with what the code says, without rewriting the catalogues.

    python scripts/sync_catalogues.py          # edit the three files
    python scripts/sync_catalogues.py --check  # only say what differs (exit 1 if any)

The ids are extracted from the sources as babel.cfg configures it (``pybabel extract``'s
own extractor). In the template (``locales/messages.pot``) and both catalogues, an entry
whose id the code no longer says is dropped, obsolete (``#~``) entries too, and an id
the code says that a file lacks is appended with an empty ``msgstr``: translate it in
``locales/ru``. Everything else is left byte for byte, including the Russian plural
entries that hold two ids of domain/texts.py (``N_`` marks each form: the template lists
them as two ids, the catalogue as one entry with its ``msgid_plural``), which
``pybabel update`` would split. tests/unit/test_catalogue_current.py fails until the
three files agree with the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import denormalize, normalize

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
FILES = ("messages.pot", "en/LC_MESSAGES/messages.po", "ru/LC_MESSAGES/messages.po")


def said() -> list[str]:
    """Every id the sources say, in the order they are first found."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, None] = {}
    for _file, _line, message, *_rest in extract_from_dir(str(ROOT), method_map,
                                                          options_map):
        for one in (message,) if isinstance(message, str) else message:
            if one:
                found.setdefault(one, None)
    return list(found)


def _field(lines: list[str], name: str) -> str | None:
    """The value of ``name`` (``msgid``, ``msgid_plural``) in one entry's lines."""
    for i, line in enumerate(lines):
        if line.startswith(name + " "):
            parts = [line[len(name) + 1:]]
            for more in lines[i + 1:]:
                if not more.startswith('"'):
                    break
                parts.append(more)
            return str(denormalize("\n".join(parts)))
    return None


def entries(text: str) -> list[list[str]]:
    return [block.split("\n") for block in text.strip("\n").split("\n\n")]


def ids_of(lines: list[str]) -> list[str]:
    return [v for v in (_field(lines, "msgid"), _field(lines, "msgid_plural"))
            if v is not None]


def sync(path: Path, live: list[str]) -> tuple[list[str], list[str], str]:
    """(dropped ids, appended ids, the new text) for one file."""
    kept, dropped, held = [], [], set()
    for n, lines in enumerate(entries(path.read_text(encoding="utf-8"))):
        ids = ids_of(lines)
        if n == 0 and ids == [""]:  # the header
            kept.append(lines)
            continue
        if all(line.startswith("#~") or not line for line in lines) or not ids:
            dropped.append(" ".join(line for line in lines)[:60])
            continue
        if ids[0] not in live:
            dropped.append(ids[0])
            continue
        kept.append(lines)
        held.update(ids)
    missing = [one for one in live if one not in held]
    for one in missing:
        kept.append([f"msgid {normalize(one, width=76)}", 'msgstr ""'])
    text = "\n\n".join("\n".join(lines) for lines in kept) + "\n"
    return dropped, missing, text


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    live = said()
    differs = False
    for name in FILES:
        path = LOCALES / name
        dropped, missing, text = sync(path, live)
        if dropped or missing:
            differs = True
            print(f"{name}: {len(dropped)} dropped, {len(missing)} appended")
            for one in dropped:
                print(f"  - {one}")
            for one in missing:
                print(f"  + {one}")
        if not check:
            path.write_text(text, encoding="utf-8")
    return 1 if check and differs else 0


if __name__ == "__main__":
    raise SystemExit(main())
