"""The policy's one answer to "which methods may complete this purpose?": the login step,
an operation (with and without methods switched on for it), managing and enrolling a
method, and the integration API, which asks the same questions of the method it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from stepup.domain.policy import (
    LOGIN,
    WITHDRAWAL,
    Completer,
    Completing,
    MethodStatus,
    Refusal,
    Registered,
    completers,
    nothing_confirms,
    pick,
    second_factor_required,
)

REGISTERED = Registered(types=frozenset({"totp", "sms", "email", "backup_codes", "webauthn"}),
                        login_fallbacks=frozenset({"backup_codes"}), account_email="email")
ENABLED, PENDING = MethodStatus.ENABLED, MethodStatus.PENDING


@dataclass(eq=False)
class Row:
    """A method row as the policy reads it (the store's rows have the same three)."""

    type: str
    status: str = ENABLED
    protects: dict[str, Any] = field(default_factory=dict)


def on(*operations: str) -> dict[str, bool]:
    return {op: True for op in operations}


def types(answer: list[Completer[Row]]) -> list[str]:
    return [c.type for c in answer]


def test_a_status_is_stored_as_its_word() -> None:
    assert [s.value for s in MethodStatus] == ["pending", "enabled"]
    assert MethodStatus("enabled") is ENABLED and ENABLED == "enabled"


# --- login ---------------------------------------------------------------------------------

def test_login_takes_the_methods_switched_on_for_it_then_the_fallbacks() -> None:
    rows = [Row("backup_codes"), Row("sms", protects=on(WITHDRAWAL)),
            Row("totp", protects=on(LOGIN)), Row("webauthn", protects=on(LOGIN, WITHDRAWAL))]
    answer = completers(Completing.login(), rows, REGISTERED)
    assert types(answer) == ["totp", "webauthn", "backup_codes"]
    assert [c.row for c in answer] == [rows[2], rows[3], rows[0]]
    assert not any(c.account_email for c in answer)
    assert second_factor_required(rows, REGISTERED)


def test_a_set_of_codes_with_none_left_is_not_offered_unless_switched_on() -> None:
    rows = [Row("totp", protects=on(LOGIN)), Row("backup_codes")]
    assert types(completers(Completing.login(), rows, REGISTERED,
                            spent={"backup_codes"})) == ["totp"]
    rows[1].protects = on(LOGIN)  # switched on itself: offered as the user chose
    assert types(completers(Completing.login(), rows, REGISTERED,
                            spent={"backup_codes"})) == ["totp", "backup_codes"]


def test_nothing_protecting_login_needs_no_second_factor_but_backup_codes_still_serve(
) -> None:
    rows = [Row("totp", protects=on(WITHDRAWAL)), Row("backup_codes")]
    assert not second_factor_required(rows, REGISTERED)  # the login step: password only
    # The integration API names a method for a login the portal asks: backup codes do.
    assert types(completers(Completing.login(), rows, REGISTERED)) == ["backup_codes"]
    assert pick(completers(Completing.login(), rows, REGISTERED), rows, "totp") \
        == Refusal.NOT_ALLOWED


def test_pending_and_unregistered_methods_complete_nothing() -> None:
    rows = [Row("totp", PENDING, on(LOGIN)), Row("pigeon", protects=on(LOGIN, WITHDRAWAL)),
            Row("backup_codes", PENDING)]
    assert completers(Completing.login(), rows, REGISTERED) == []
    assert not second_factor_required(rows, REGISTERED)
    assert completers(Completing.operation(WITHDRAWAL), rows, REGISTERED) == []
    assert pick([], rows, "totp") == Refusal.NOT_ENABLED


# --- operations ----------------------------------------------------------------------------

def test_an_operation_takes_only_the_methods_switched_on_for_its_type() -> None:
    rows = [Row("totp", protects=on(LOGIN)), Row("sms", protects=on(WITHDRAWAL)),
            Row("backup_codes", protects=on(LOGIN)), Row("email", protects=on("transfer"))]
    for fallback in (False, True):
        answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                            email_fallback=fallback)
        assert types(answer) == ["sms"] and answer[0].row is rows[1]
    # Backup codes stand in for login only.
    assert types(completers(Completing.operation("transfer"), rows, REGISTERED)) == ["email"]


def test_with_nothing_switched_on_the_verified_account_email_confirms_under_policy_always(
        ) -> None:
    rows = [Row("totp", protects=on(LOGIN)), Row("email", protects=on(LOGIN))]
    answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                        email_fallback=True, email_verified=True)
    assert answer == [Completer("email")]  # not the user's e-mail method: the account's
    assert answer[0].account_email and answer[0].row is None
    # Policy if_protected: nothing confirms by a code (the PIN alone, if any).
    assert completers(Completing.operation(WITHDRAWAL), rows, REGISTERED) == []
    # No method sends to an e-mail address: no fallback either.
    bare = Registered(types=REGISTERED.types, login_fallbacks=REGISTERED.login_fallbacks)
    assert completers(Completing.operation(WITHDRAWAL), rows, bare, email_fallback=True,
                      email_verified=True) == []


def test_an_unverified_account_email_confirms_nothing() -> None:
    rows = [Row("totp", protects=on(LOGIN))]
    answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                        email_fallback=True, email_verified=False)
    assert answer == []
    assert pick(answer, rows, "email") == Refusal.NOT_ENABLED
    # Policy always asks for a code that nothing can receive: refused, never the PIN alone.
    assert nothing_confirms(answer, email_fallback=True)
    # Policy if_protected: the PIN alone confirms.
    assert not nothing_confirms(answer, email_fallback=False)
    # A method switched on for it confirms, verified or not.
    rows.append(Row("sms", protects=on(WITHDRAWAL)))
    answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                        email_fallback=True)
    assert types(answer) == ["sms"] and not nothing_confirms(answer, email_fallback=True)


def test_a_method_refused_for_an_operation_says_why() -> None:
    rows = [Row("totp", protects=on(LOGIN)), Row("sms", PENDING, on(WITHDRAWAL))]
    answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                        email_fallback=True, email_verified=True)
    assert pick(answer, rows, "email") == answer[0]  # the account e-mail
    assert pick(answer, rows, "totp") == Refusal.NOT_ALLOWED  # enabled, switched off
    assert pick(answer, rows, "sms") == Refusal.NOT_ENABLED  # only pending
    assert pick(answer, rows, "webauthn") == Refusal.NOT_ENABLED  # none at all


# --- managing and enrolling a method --------------------------------------------------------

@pytest.mark.parametrize("switches", [{}, on(LOGIN), on(LOGIN, WITHDRAWAL)])
def test_managing_a_method_takes_that_method_whatever_it_protects(
        switches: dict[str, bool]) -> None:
    rows = [Row("totp", protects=switches), Row("sms", protects=on(LOGIN))]
    answer = completers(Completing.manage("totp"), rows, REGISTERED)
    assert answer == [Completer("totp", rows[0])]
    assert pick(answer, rows, "sms") == Refusal.NOT_ALLOWED  # its code manages only itself
    assert completers(Completing.enroll("totp"), rows, REGISTERED) == []


def test_enrolling_a_method_takes_it_while_it_is_pending() -> None:
    rows = [Row("sms", PENDING)]
    assert completers(Completing.enroll("sms"), rows, REGISTERED) == [Completer("sms", rows[0])]
    assert completers(Completing.manage("sms"), rows, REGISTERED) == []
    assert pick([], rows, "sms") == Refusal.NOT_ENABLED


# --- the integration API -------------------------------------------------------------------

@pytest.mark.parametrize(("row", "expected"), [
    (Row("totp", protects=on(LOGIN)), "totp"),
    (Row("backup_codes"), "backup_codes"),  # the way in, even with none switched on
    (Row("totp", protects=on(WITHDRAWAL)), Refusal.NOT_ALLOWED),
    (Row("totp", PENDING, on(LOGIN)), Refusal.NOT_ENABLED),
    (None, Refusal.NOT_ENABLED),
])
def test_a_headless_login_asks_of_the_named_method_alone(
        row: Row | None, expected: str) -> None:
    rows = [row] if row is not None else []
    chosen = pick(completers(Completing.login(), rows, REGISTERED), rows, "totp"
                  if row is None else row.type)
    assert (chosen.type if isinstance(chosen, Completer) else chosen) == expected


def test_a_headless_operation_gets_the_same_answer_as_the_pages() -> None:
    rows = [Row("totp", protects=on(LOGIN)), Row("webauthn", protects=on(WITHDRAWAL))]
    answer = completers(Completing.operation(WITHDRAWAL), rows, REGISTERED,
                        email_fallback=True)
    assert types(answer) == ["webauthn"]
    assert pick(answer, rows, "totp") == Refusal.NOT_ALLOWED
    assert pick(answer, rows, "email") == Refusal.NOT_ENABLED  # someone protects it
