"""Policy: operations, purposes, which methods may complete them, and how guessing is
slowed down.

Operations are data: ``login`` and ``withdrawal`` by default, more by configuration.
A user's policy is the set of (method, operation) switches stored on each method;
``completers`` is the one answer to "which methods may complete this purpose?" for the
login step, operations, managing a method and the integration API alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

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

    @classmethod
    def verify_email(cls) -> Purpose:
        """Proving the account e-mail address is the user's (services/email_verification)."""
        return cls("verify:email")


def serves(protects: Mapping[str, bool], operation: str, *, login_fallback: bool = False
           ) -> bool:
    """Whether an enabled method may answer for ``operation`` — on StepUp's pages and
    through the integration API alike: the user switched it on for that operation, or,
    for login only, it is a login fallback (backup codes: the way in when the usual
    method is lost)."""
    return bool(protects.get(operation)) or (operation == LOGIN and login_fallback)


class MethodStatus(StrEnum):
    """Where a user's method stands (stored as its value)."""

    PENDING = "pending"  # enrolling: waiting for its first proof
    ENABLED = "enabled"


class MethodRecord(Protocol):
    """What the policy reads of one of the user's methods (a stored method row)."""

    @property
    def type(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def protects(self) -> Mapping[str, Any]: ...


R = TypeVar("R", bound=MethodRecord)
T = TypeVar("T")  # unbounded: checked where a method is read, not where it is named


@dataclass(frozen=True)
class Registered:
    """What the policy knows of the registered methods (the registry's answer)."""

    types: frozenset[str]
    #: The methods that stand in for any login method (backup codes).
    login_fallbacks: frozenset[str] = frozenset()
    #: The method that sends codes to an e-mail address: the account e-mail's channel.
    account_email: str | None = None


@dataclass(frozen=True)
class Completing:
    """What a proof is asked for, as the policy sees it: a login, an operation of a
    type, or managing (``manage``) or enrolling (``enroll``) one method. A ``Purpose``
    names one instance of it (this operation, this login)."""

    kind: Literal["login", "operation", "manage", "enroll"]
    name: str  # the operation ("login", "withdrawal"), or the method's type

    @classmethod
    def login(cls) -> Completing:
        return cls("login", LOGIN)

    @classmethod
    def operation(cls, operation_type: str) -> Completing:
        return cls("operation", operation_type)

    @classmethod
    def manage(cls, method_type: str) -> Completing:
        return cls("manage", method_type)

    @classmethod
    def enroll(cls, method_type: str) -> Completing:
        return cls("enroll", method_type)


@dataclass(frozen=True)
class Completer(Generic[T]):
    """One way to complete a purpose: one of the user's methods (``row``), or — no
    ``row`` — the account's e-mail address, by the ``type`` that sends to it."""

    type: str
    row: T | None = None

    @property
    def account_email(self) -> bool:
        return self.row is None


class Refusal(StrEnum):
    """Why a named method may not complete a purpose."""

    NOT_ENABLED = "not_enabled"  # the user has no enabled method of that type
    NOT_ALLOWED = "not_allowed"  # enabled, but not switched on for this purpose


def completers(what: Completing, methods: Iterable[R], registered: Registered, *,
               spent: Collection[str] = (), email_fallback: bool = False,
               email_verified: bool = False) -> list[Completer[R]]:
    """The user's ways to complete ``what``, in the order they are offered.

    - a login: the enabled methods switched on for login, then the login fallbacks
      (backup codes: the way in when the usual method is lost) whose type is not in
      ``spent`` (a set of codes with none left is not offered; a caller that offers
      nothing but checks the one method it was given passes none, so the last code
      typed again is still told apart as a repeat);
    - an operation: the enabled methods switched on for its type; with none,
      ``email_fallback`` (policy ``always``) makes the account e-mail the one way — only
      once it is verified (``email_verified``): a code sent to an address nobody proved
      is theirs confirms nothing (see ``nothing_confirms``);
    - managing a method: that method, enabled; enrolling it: that method, pending.

    A method of a type no longer registered completes nothing.
    """
    rows = [r for r in methods if r.type in registered.types]
    if what.kind in ("manage", "enroll"):
        status = MethodStatus.ENABLED if what.kind == "manage" else MethodStatus.PENDING
        return [Completer(r.type, r) for r in rows
                if r.type == what.name and r.status == status]
    enabled = [r for r in rows if r.status == MethodStatus.ENABLED]
    switched_on = [r for r in enabled if r.protects.get(what.name)]
    out = [Completer(r.type, r) for r in switched_on]
    if what.kind == "login":
        out += [Completer(r.type, r) for r in enabled
                if r not in switched_on and r.type not in spent
                and serves(r.protects, LOGIN,
                           login_fallback=r.type in registered.login_fallbacks)]
    elif not out and email_fallback and email_verified and \
            registered.account_email is not None:
        out.append(Completer(registered.account_email))
    return out


def nothing_confirms(answer: Collection[Completer[Any]], *, email_fallback: bool) -> bool:
    """Whether an operation must be refused because nothing may confirm it: ``answer``
    (what ``completers`` said) is empty while the policy (``always``) asks for a code.
    Under ``if_protected`` an empty answer means the PIN alone confirms."""
    return not answer and email_fallback


def second_factor_required(methods: Iterable[MethodRecord], registered: Registered) -> bool:
    """Whether logging in asks for more than the password: some enabled method is
    switched on for login (a login fallback alone does not make it needed)."""
    return any(r.type in registered.types and r.status == MethodStatus.ENABLED
               and r.protects.get(LOGIN) for r in methods)


def pick(answer: Iterable[Completer[R]], methods: Iterable[MethodRecord], method_type: str
         ) -> Completer[R] | Refusal:
    """The completer of ``method_type`` among ``answer`` (what ``completers`` said), or
    why it may not serve: the user's method of that type is enabled but not switched
    on for the purpose, or there is no enabled one."""
    for completer in answer:
        if completer.type == method_type:
            return completer
    if any(r.type == method_type and r.status == MethodStatus.ENABLED for r in methods):
        return Refusal.NOT_ALLOWED
    return Refusal.NOT_ENABLED


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
