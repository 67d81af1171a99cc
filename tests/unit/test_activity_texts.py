"""Every kind of audit event that can be written for an account has a sentence on the
activity page, in English and in Russian: the kinds are found in the code (every
``audit.record(…)`` and ``methods.changed(…)`` call of src/stepup), so a new kind
without a sentence fails here, not in front of a user as a raw id."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import stepup
from stepup.i18n import translations
from stepup.services.activity import ActivityEvent
from stepup.web.portal import activity_texts
from stepup.web.portal.activity_texts import PURPOSE_KINDS, TEXTS, sentence, situation

SRC = Path(stepup.__file__).resolve().parent

# Writes whose kind is not a literal: where, which variable, and every value it takes.
# A new one fails test_every_event_kind_is_a_literal_or_listed until it is listed here.
DYNAMIC = {
    # methods.changed(…, event, …) records what its callers name: they are scanned too.
    ("services/methods.py", "event"): set(),
    # verification._lock_event(lock, "…"): that kind, or account.locked.
    ("services/verification.py", "event"): {"method.locked", "pin.locked", "account.locked"},
}
# What a wrong PIN can be told for (it names a method or an operation, not a purpose);
# a code is told for every purpose as well (test_every_purpose_of_a_code_is_told).
SITUATIONS = {"login", "withdrawal", "operation", "enroll", "manage", ""}
CODE_KINDS = PURPOSE_KINDS - {"pin.failed"}


def _writes() -> tuple[set[str], list[tuple[str, str]]]:
    """(the literal kinds written for an account, the non-literal writes)."""
    kinds: set[str] = set()
    dynamic: list[tuple[str, str]] = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) else None
            if name == "record" and owner == "audit" and len(node.args) >= 5:
                event, user = node.args[3], node.args[4]
                if isinstance(user, ast.Constant) and user.value is None:
                    continue  # an event of no account: never on an activity page
            elif name == "changed" and owner in (None, "methods") and len(node.args) >= 4:
                event = node.args[3]
            else:
                continue
            if isinstance(event, ast.Constant) and isinstance(event.value, str):
                kinds.add(event.value)
            else:
                dynamic.append((rel, ast.unparse(event)))
    return kinds, dynamic


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's NAME = "text" assignments (LOGIN = "login")."""
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def _purpose_value(arg: ast.expr, constants: dict[str, str]) -> str | None:
    """A purpose as written: "verify:email"; f"enroll:{type}" → "enroll:x"."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Name):
        return constants.get(arg.id)
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(
            arg.values[0], ast.Constant) and isinstance(arg.values[0].value, str):
        prefix = arg.values[0].value
        return prefix + "x" if prefix.endswith(":") else None
    return None


def _purposes() -> set[str]:
    """Every purpose a code can be issued for: each ``Purpose(…)`` of src/stepup, and
    each ``cls(…)`` of the class Purpose itself (its named constructors)."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        calls = [(n, False) for n in ast.walk(tree) if isinstance(n, ast.Call)]
        for cls in ast.walk(tree):
            if isinstance(cls, ast.ClassDef) and cls.name == "Purpose":
                calls += [(n, True) for n in ast.walk(cls) if isinstance(n, ast.Call)]
        for node, inside in calls:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if not node.args or not (name == "Purpose" or (inside and name == "cls")):
                continue
            value = _purpose_value(node.args[0], constants)
            assert value is not None or isinstance(node.args[0], ast.Name), \
                f"{path}: a purpose this test cannot read: {ast.unparse(node)}"
            if value is not None:
                found.add(value)
    return found


def test_the_scan_finds_the_writes() -> None:
    kinds, _dynamic = _writes()
    # A sanity check of the scanner itself: these are written for sure.
    assert {"account.created", "login.succeeded", "code.failed", "pin.failed",
            "method.enabled", "passkey.added", "recovery.completed"} <= kinds
    assert "apikey.created" not in kinds  # user_id None: no account's


def test_every_event_kind_is_a_literal_or_listed() -> None:
    _kinds, dynamic = _writes()
    for where in dynamic:
        assert where in DYNAMIC, f"{where}: list the kinds this write can take in DYNAMIC"


def test_every_event_kind_of_an_account_has_a_sentence() -> None:
    kinds, _dynamic = _writes()
    kinds |= set().union(*DYNAMIC.values())
    missing = sorted(k for k in kinds if k not in TEXTS)
    assert not missing, f"no sentence on the activity page for: {missing}"
    assert all("" in TEXTS[k] for k in kinds), "every kind needs its general sentence"


def test_codes_and_the_pin_are_told_for_every_purpose() -> None:
    situations = SITUATIONS | set(activity_texts.PURPOSE_SITUATIONS.values())
    for kind in CODE_KINDS:
        assert set(TEXTS[kind]) == situations, kind
    assert set(TEXTS["pin.failed"]) == SITUATIONS


def test_every_purpose_of_a_code_is_told() -> None:
    """A purpose the code can issue (found in the source) and this page cannot tell
    fails here: its code events would read "A security code was sent"."""
    purposes = _purposes()
    assert {"login", "enroll:x", "manage:x", "add:x", "operation:x", "verify:email",
            "account:pin"} <= purposes, purposes  # the scanner itself
    for purpose in sorted(purposes):
        # An operation's codes are told by its type (the page reads it from the
        # operation): without one, the general sentence is right.
        op = "withdrawal" if purpose.startswith("operation:") else None
        for kind in sorted(CODE_KINDS):
            e = event(kind, method="email", purpose=purpose, operation_type=op)
            assert situation(e) in TEXTS[kind] and situation(e) != "", (kind, purpose)


def test_every_sentence_is_russian_with_the_same_placeholders() -> None:
    ru = translations("ru")
    for kind, texts in TEXTS.items():
        for text in texts.values():
            russian = ru.gettext(text)
            assert russian != text, f"{kind}: no Russian for {text!r}"
            assert not re.search(r"[A-Za-z]{3,}", re.sub(r"%\(\w+\)s", "", russian)), russian
            assert re.findall(r"%\(\w+\)s", russian) == re.findall(r"%\(\w+\)s", text)
            assert "PIN-код" not in russian and "защитн" not in russian, russian


def event(kind: str, **facts: Any) -> ActivityEvent:
    fields = tuple(facts.pop("fields", ()))
    op = facts.pop("operation_type", None)
    return ActivityEvent(id=1, event=kind, created_at=datetime(2026, 11, 22, tzinfo=UTC),
                         ip=None, user_agent=None, facts=facts, fields=fields,
                         operation_type=op)


@pytest.mark.parametrize(("e", "expected"), [
    (event("pin.failed", method="operation:withdrawal", operation_type="withdrawal"),
     "Wrong PIN entered while confirming a withdrawal"),
    (event("pin.failed", method="sms"),
     "Wrong PIN entered while setting up an authentication method"),
    (event("pin.failed"), "Wrong PIN entered"),
    (event("code.failed", method="totp", purpose="login"),
     "Wrong security code entered while logging in"),
    (event("code.failed", method="sms", purpose="operation:op1",
           operation_type="payout"),
     "Wrong security code entered while confirming the operation “%(operation)s”"),
    (event("code.sent", method="sms", purpose="operation:gone"), "A security code was sent"),
    (event("code.sent", method="sms", purpose="enroll:sms"),
     "Security code sent for setting up an authentication method"),
    (event("code.replayed", method="totp", purpose="manage:totp"),
     "A security code already used was entered again while changing an authentication "
     "method"),
    (event("code.sent", method="email", purpose="verify:email"),
     "Security code sent to verify your e-mail address"),
    (event("code.failed", method="email", purpose="verify:email"),
     "Wrong security code entered while verifying your e-mail address"),
    (event("code.sent", method="sms", purpose="account:pin"),
     "Security code sent to change your PIN"),
    (event("code.failed", method="totp", purpose="account:pin"),
     "Wrong security code entered while changing your PIN"),
    (event("code.replayed", method="totp", purpose="account:pin"),
     "A security code already used was entered again while changing your PIN"),
    (event("delivery.failed", method="email", purpose="verify:email"),
     "A security code to verify your e-mail address could not be sent"),
    (event("login.succeeded", second_factor="remembered_device"),
     "Logged in on a remembered device, without a security code"),
    (event("login.succeeded", second_factor="totp"),
     "Logged in with the password and a security code"),
    (event("account.updated", fields=["language"]),
     "Language of the pages and messages changed"),
    (event("account.updated", fields=["email", "pin"]), "Account details changed"),
    (event("device.forgotten", reason="method.enabled"),
     "Remembered devices forgotten after a change of authentication methods"),
    (event("operation.confirmed", operation_type="withdrawal"), "Withdrawal confirmed"),
    (event("some.future_kind"), None),
])
def test_the_sentence_for_each_situation(e: ActivityEvent, expected: str | None) -> None:
    assert sentence(e) == expected, situation(e)


def test_the_method_shown_is_a_method() -> None:
    assert activity_texts.method_of(event("pin.failed", method="operation:withdrawal")) is None
    assert activity_texts.method_of(event("login.succeeded",
                                          second_factor="remembered_device")) is None
    assert activity_texts.method_of(event("login.succeeded", second_factor="sms")) == "sms"
    assert activity_texts.method_of(event("method.enabled", method="totp")) == "totp"
