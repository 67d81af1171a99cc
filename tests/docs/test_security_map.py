"""docs/security.md's standards map cannot rot: every test it names exists.

The map (``## Standards map``) has three tables — NIST SP 800-63B-4, OWASP ASVS 5.0 and
the PSD2 RTS (Delegated Regulation (EU) 2018/389) — whose rows name the tests that prove
them as ``tests/<path>.py::test_name`` (a parametrised id such as ``test_x[sms]`` names
``test_x``). Each reference anywhere in the document must point to a file that defines
that test function (at module level or in a class), so renaming or deleting a test fails
here until the map follows. A row without a reference must say why: N/A, or a gap.

Reads files only: no server, no database.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?")
TABLES = {  # the three tables: a word of each one's heading
    "nist": "800-63B-4",
    "asvs": "ASVS 5.0",
    "psd2": "2018/389",
}
UNPROVEN_OK = ("N/A", "Gap", "no test")


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``## `` heading."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"## {heading}"]
    assert len(starts) == 1, f"docs/security.md needs one '## {heading}' section"
    body = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        body.append(line)
    return "\n".join(body)


def subsections(text: str) -> dict[str, str]:
    """``### heading`` → its body."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def table_rows(text: str) -> list[list[str]]:
    """The data rows of the first Markdown table in ``text`` (cells, stripped)."""
    rows, seen_rule = [], False
    for line in text.splitlines():
        if not line.startswith("|"):
            if seen_rule:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            seen_rule = True
        elif seen_rule:
            rows.append(cells)
    return rows


def references(text: str) -> list[tuple[str, str]]:
    """Every ``tests/…py::name`` in ``text``, the name without its parametrised id."""
    return [(path, name) for path, name in REFERENCE.findall(text)]


def defined_tests(source: str) -> frozenset[str]:
    """The test functions a module defines, at top level or in its classes."""
    names = set()
    for node in ast.parse(source).body:
        bodies = node.body if isinstance(node, ast.ClassDef) else [node]
        names |= {n.name for n in bodies
                  if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return frozenset(n for n in names if n.startswith("test"))


@cache
def names_in_file(path: str) -> frozenset[str]:
    return defined_tests((ROOT / path).read_text(encoding="utf-8"))


def document() -> str:
    return DOC.read_text(encoding="utf-8")


def the_map() -> dict[str, str]:
    """Table key → that subsection of the map."""
    found: dict[str, str] = {}
    for heading, body in subsections(section(document(), "Standards map")).items():
        for key, word in TABLES.items():
            if word in heading:
                assert key not in found, f"two headings name {word!r}"
                found[key] = body
    return found


def test_the_map_has_the_three_tables() -> None:
    found = the_map()
    assert set(found) == set(TABLES), f"missing tables: {set(TABLES) - set(found)}"
    for key, body in found.items():
        rows = table_rows(body)
        assert len(rows) >= 5, f"the {TABLES[key]} table has {len(rows)} rows"
        assert all(len(r) == 3 for r in rows), \
            f"{TABLES[key]}: every row is | requirement | how | test |"


def test_every_row_is_proved_or_says_why_not() -> None:
    for key, body in the_map().items():
        for row in table_rows(body):
            text = " | ".join(row)
            assert references(row[2]) or any(w in text for w in UNPROVEN_OK), \
                f"{TABLES[key]}: a row with no test that does not say N/A or Gap: {text}"


def test_the_map_names_tests_in_every_table() -> None:
    for key, body in the_map().items():
        assert len(references(body)) >= 5, f"the {TABLES[key]} table names few tests"


@pytest.mark.parametrize("ref", sorted(set(references(document()))),
                         ids=lambda ref: f"{ref[0]}::{ref[1]}")
def test_every_referenced_test_exists(ref: tuple[str, str]) -> None:
    path, name = ref
    assert (ROOT / path).is_file(), f"docs/security.md names {path}, which does not exist"
    assert name in names_in_file(path), \
        f"docs/security.md names {path}::{name}, which {path} does not define"


def test_the_reference_parser() -> None:
    text = ("| x | y | `tests/api/test_a.py::test_b`, `tests/api/test_a.py::test_c[sms, 2]` |\n"
            "see tests/unit/test_d.py::test_e; and tests/unit/test_d.py alone")
    assert references(text) == [("tests/api/test_a.py", "test_b"),
                                ("tests/api/test_a.py", "test_c"),
                                ("tests/unit/test_d.py", "test_e")]
    assert table_rows("intro\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nafter\n") == [
        ["1", "2"], ["3", "4"]]
    source = ("class TestX:\n    def test_in_class(self): ...\n"
              "async def test_top(): ...\ndef helper(): ...\n")
    assert defined_tests(source) == {"test_in_class", "test_top"}
