"""Each method is a package: its descriptor says what the layers above need to know."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

import stepup
from stepup.i18n import LOCALES
from stepup.methods import registry
from stepup.methods.base import Descriptor, IssuesCodeSets

TEXTS = ("name", "notice_name", "blurb", "channel_name", "proof_label", "code_hint",
         "setup_intro", "disable_intro")


def test_every_registered_method_has_one_descriptor_in_page_order() -> None:
    descriptors = registry.descriptors()
    assert [d.type for d in descriptors] == [m.type for m in registry.available()]
    assert [d.order for d in descriptors] == sorted({d.order for d in descriptors})
    # These in this order; a new method takes its place among them by its own order.
    first = ["totp", "sms", "email", "whatsapp", "backup_codes", "webauthn"]
    assert [t for t in registry.types() if t in first] == first
    for d in descriptors:
        assert registry.descriptor(d.type) is d
        assert registry.get(d.type).login_fallback == d.login_fallback


def test_a_method_that_sends_codes_says_by_which_channel_and_to_what() -> None:
    for d in registry.descriptors():
        if d.sends_codes:
            assert d.channel_name and d.channel_word and d.channel_label
            assert d.destination in ("phone", "email")
            assert d.setup_intro and d.code_hint
        else:
            assert d.destination is None and d.channel_name is None


@pytest.fixture(scope="module")
def russian() -> Catalog:
    with (LOCALES / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale="ru")


@pytest.mark.parametrize("descriptor", registry.descriptors(), ids=lambda d: d.type)
def test_every_text_of_a_descriptor_has_a_russian_translation(descriptor: Descriptor,
                                                              russian: Catalog) -> None:
    for name in TEXTS:
        text = getattr(descriptor, name)
        if text:
            entry = russian.get(text)
            assert entry is not None and entry.string, f"{descriptor.type}.{name}: {text!r}"


def test_templates_a_descriptor_names_are_in_its_package() -> None:
    for d in registry.descriptors():
        if d.templates is not None:
            assert (d.templates / d.type).is_dir(), d.type


def test_abilities_are_declared_not_guessed() -> None:
    sets = [m.type for m in registry.available() if isinstance(m, IssuesCodeSets)]
    assert sets == ["backup_codes"]
    assert dataclasses.is_dataclass(Descriptor)


SRC = Path(stepup.__file__).resolve().parent
TYPES = "|".join(registry.types())
# "email" is also a field and a kind of destination: written out, it is a method type
# only where it is compared with a variable named for a type.
NAMED = "|".join(t for t in registry.types() if t != "email")
# A comparison with a method type written out: `x == "sms"`, `"sms" != x`, `x in ("sms", …)`,
# `row.type == "email"`.
COMPARES = re.compile(rf'(==|!=|\bin)\s*\(?\s*["\']({NAMED})["\']|["\']({NAMED})["\']\s*(==|!=)'
                      rf'|type\w*\s*(==|!=|\bin)\s*\(?\s*["\']({TYPES})["\']')
# Providers carry their own channels, and notices choose a shape by delivery channel (SMS
# or e-mail, where a notice goes), not by method.
PROVIDERS = {"delivery/twilio.py", "delivery/meta.py", "delivery/notices.py"}


def test_no_code_outside_methods_asks_which_method_this_is() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("methods/", "store/migrations/")) or rel in PROVIDERS:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = COMPARES.search(line)
            if match:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_no_page_template_asks_which_method_this_is() -> None:
    found = []
    for path in sorted((SRC / "web" / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if COMPARES.search(line):
                found.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
