"""Policy: operations, purposes, and how guessing is slowed down.

Operations are data: ``login`` and ``withdrawal`` by default, more by configuration.
A user's policy is the set of (method, operation) switches stored on each method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

LOGIN = "login"
WITHDRAWAL = "withdrawal"


@dataclass(frozen=True)
class Purpose:
    """What a code is for. A code issued for one purpose never serves another.

    ``details`` are what a message must show about it (an operation's amount and
    destination), never part of its identity.
    """

    value: str
    details: dict[str, str] | None = field(default=None, compare=False, hash=False)

    @classmethod
    def login(cls) -> Purpose:
        return cls(LOGIN)

    @classmethod
    def enroll(cls, method_type: str) -> Purpose:
        return cls(f"enroll:{method_type}")

    @classmethod
    def manage(cls, method_type: str) -> Purpose:
        return cls(f"manage:{method_type}")

    @classmethod
    def operation(cls, operation_id: str, details: dict[str, str] | None = None) -> Purpose:
        return cls(f"operation:{operation_id}", details)


def serves(protects: Mapping[str, bool], operation: str, *, login_fallback: bool = False
           ) -> bool:
    """Whether an enabled method may answer for ``operation`` — on StepUp's pages and
    through the integration API alike: the user switched it on for that operation, or,
    for login only, it is a login fallback (backup codes: the way in when the usual
    method is lost)."""
    return bool(protects.get(operation)) or (operation == LOGIN and login_fallback)


def initial_protects(operations: list[str], *, first_method: bool) -> dict[str, bool]:
    """A new method protects nothing, except that a user's first method protects login."""
    return {op: (first_method and op == LOGIN) for op in operations}


def lock_seconds(level: int, first: int, maximum: int) -> int:
    """Length of the n-th consecutive method lock (level 0 is the first): doubling, capped."""
    return int(min(first * (2 ** min(level, 30)), maximum))


@dataclass(frozen=True)
class LockRule:
    scope: str
    after: int
    first_seconds: int
    max_seconds: int
    doubling: bool


def method_scope(method_type: str) -> str:
    return f"method:{method_type}"


PIN_SCOPE = "pin"
ACCOUNT_SCOPE = "account"
