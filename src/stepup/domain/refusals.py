"""What a refused step had read when it refused, handed to the page that shows it again.

A service that refuses a step (a wrong code, a lock) has already read what the page
draws beside the reason: the login's methods, for one. It keeps that on the error
(``keeping``), so the page takes it from there (``held``) instead of opening a second
transaction to read it again: a wrong code costs one transaction. It is never part of
a problem document: the API's answers do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from stepup.domain.errors import DomainError

T = TypeVar("T")
_HELD = "_stepup_held"


@contextmanager
def keeping(what: Callable[[], object]) -> Iterator[None]:
    """A domain error raised inside carries ``what()``: what the step had read."""
    try:
        yield
    except DomainError as err:
        setattr(err, _HELD, what())
        raise


def held(err: DomainError, kind: type[T]) -> T | None:
    """What the refusing step kept on ``err``, if it is a ``kind``."""
    value = getattr(err, _HELD, None)
    return value if isinstance(value, kind) else None
