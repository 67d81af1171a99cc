"""Reading StepUp's JSON answers without trusting their shape: every helper raises
:class:`MalformedAnswer` when a member is missing or of another type."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


class MalformedAnswer(ValueError):
    """An answer that does not have the shape the API promises."""


def obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedAnswer("expected an object")
    return value


def items(d: Mapping[str, Any], key: str) -> list[Any]:
    """A list member (missing or null: empty)."""
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedAnswer(key)
    return value


def string(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise MalformedAnswer(key)
    return value


def opt_str(d: Mapping[str, Any], key: str) -> str | None:
    return None if d.get(key) is None else string(d, key)


def strings(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = items(d, key)
    if not all(isinstance(v, str) for v in values):
        raise MalformedAnswer(key)
    return tuple(values)


def integer(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedAnswer(key)
    return value


def opt_int(d: Mapping[str, Any], key: str) -> int | None:
    return None if d.get(key) is None else integer(d, key)


def boolean(d: Mapping[str, Any], key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise MalformedAnswer(key)
    return value


def opt_bool(d: Mapping[str, Any], key: str) -> bool | None:
    return None if d.get(key) is None else boolean(d, key)


def instant(d: Mapping[str, Any], key: str) -> datetime:
    return _parse_dt(string(d, key), key)


def opt_instant(d: Mapping[str, Any], key: str) -> datetime | None:
    return None if d.get(key) is None else instant(d, key)


def _parse_dt(value: str, key: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedAnswer(key) from exc


def instants(d: Mapping[str, Any], key: str) -> dict[str, datetime]:
    """An object of names to instants (e.g. the methods' locks)."""
    return {str(k): _parse_dt(v if isinstance(v, str) else "", key)
            for k, v in obj(d.get(key) or {}).items()}


def opt_obj(d: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    return None if d.get(key) is None else obj(d.get(key))
