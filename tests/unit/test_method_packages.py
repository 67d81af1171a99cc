"""Each method is a package: its descriptor says what the layers above need to know."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from pydantic import BaseModel

import stepup
from stepup.config import METHOD_SETTINGS, ConfigurationError, Settings
from stepup.i18n import LOCALES
from stepup.methods import registry
from stepup.methods.base import (
    CodeSent,
    CodesIssued,
    Descriptor,
    EnrollmentStart,
    IssuesCodeSets,
    PasskeyOptions,
)
from stepup.methods.totp import TotpSetup

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


# --- the package layout, typed results and each method's own settings -------------------

METHODS = SRC / "methods"
SHARED_BASES = {"__init__.py", "base.py", "oob.py", "registry.py"}


def test_every_method_module_sits_in_its_package() -> None:
    loose = sorted(p.name for p in METHODS.glob("*.py") if p.name not in SHARED_BASES)
    assert not loose, f"methods/ modules outside a package: {loose}"
    for d in registry.descriptors():
        assert (METHODS / d.type / "__init__.py").is_file(), d.type


def test_a_method_package_exports_its_descriptor_and_method() -> None:
    for d in registry.descriptors():
        package = importlib.import_module(f"stepup.methods.{d.type}")
        assert package.DESCRIPTOR is d
        assert package.METHOD is registry.get(d.type)


def test_an_enrollment_result_carries_no_http_status() -> None:
    fields = {f.name: f for f in dataclasses.fields(EnrollmentStart)}
    assert "status_code" not in fields
    assert not [n for n in fields if "status" in n or "http" in n]
    # The body is a typed value, not a dict the web layer passes through.
    assert "dict" not in str(fields["body"].type)


def test_typed_bodies_are_dataclasses_with_a_page() -> None:
    for body in (CodesIssued(["a"]), CodeSent("x", 1, 2), PasskeyOptions({}, 1),
                 TotpSetup("JBSWY3DPEHPK3PXP", "otpauth://totp/x", "<svg/>")):
        assert dataclasses.is_dataclass(body)
        assert isinstance(body.page_context(), dict)


SETTINGS_MODULES = sorted(METHODS.glob("*/settings.py"))


def test_each_methods_settings_are_declared_in_its_package_and_composed() -> None:
    assert {p.parent.name for p in SETTINGS_MODULES} >= {"totp", "backup_codes", "webauthn"}
    for path in SETTINGS_MODULES:
        module = importlib.import_module(f"stepup.methods.{path.parent.name}.settings")
        declared = [v for v in vars(module).values()
                    if isinstance(v, type) and issubclass(v, BaseModel) and v is not BaseModel
                    and v.__module__ == module.__name__]
        assert declared, path
        for part in declared:
            assert issubclass(Settings, part), f"config.Settings does not compose {part}"
            assert part in METHOD_SETTINGS, part
            for name in part.model_fields:
                assert name in Settings.model_fields


def test_a_methods_settings_module_imports_nothing_of_stepup() -> None:
    # config imports it while config itself is being built: an import of StepUp here
    # would run back into config.
    for path in SETTINGS_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("stepup"), path
                assert node.level == 0, path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("stepup") for a in node.names), path


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(SRC.parent)})


def test_reading_the_settings_loads_no_method() -> None:
    # config composes each method's settings while it is being built: were a package to
    # load its method there, the method would import config back half-built (a cycle),
    # and every `stepup` command would load the store and the providers to read a setting.
    done = _fresh("import sys, stepup.config\n"
                  "print(sorted(m for m in sys.modules if m.startswith(('stepup.methods.base',"
                  " 'sqlalchemy', 'pyotp', 'webauthn')) or m.endswith('.method')))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["stepup.methods.totp.settings", "stepup.methods.totp",
                                    "stepup.methods.backup_codes", "stepup.methods.webauthn",
                                    "stepup.methods.base", "stepup.methods.registry"])
def test_whichever_module_comes_first_there_is_no_import_cycle(module: str) -> None:
    done = _fresh(f"import {module}, stepup.cli\n"
                  "from stepup.methods import registry\n"
                  "assert all(registry.get(t) for t in registry.types())")
    assert done.returncode == 0, done.stderr


def test_the_method_settings_read_the_same_environment_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPUP_TOTP_WINDOW", "0")
    monkeypatch.setenv("STEPUP_TOTP_DRIFT_STEPS", "7")
    monkeypatch.setenv("STEPUP_BACKUP_CODE_COUNT", "4")
    monkeypatch.setenv("STEPUP_BACKUP_CODES_WARN_AT", "1")
    monkeypatch.setenv("STEPUP_WEBAUTHN_RP_ID", "example.com")
    monkeypatch.setenv("STEPUP_WEBAUTHN_ORIGINS", '["http://www.example.com"]')
    s = Settings(env="production", keyring="k", secret_key="s",
                 public_url="https://mfa.example.com")
    assert (s.totp_window, s.totp_drift_steps) == (0, 7)
    assert (s.backup_code_count, s.backup_codes_warn_at) == (4, 1)
    assert (s.webauthn_rp_id, s.webauthn_origins) == ("example.com", ["http://www.example.com"])
    # The passkeys' own production check travels with its settings.
    with pytest.raises(ConfigurationError, match="STEPUP_WEBAUTHN_ORIGINS"):
        s.check_production()
