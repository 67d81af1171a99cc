"""Time as an injected dependency, so every expiry and time step is testable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to (tests, benchmarks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **kw: float) -> None:
        self._now += timedelta(seconds=seconds, **kw)

    def set(self, when: datetime) -> None:
        self._now = when


def as_utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hour_window(now: datetime) -> tuple[datetime, int]:
    """The hourly counters' window that ``now`` falls in (the start of its hour), and the
    whole seconds until the next one begins: a refusal's Retry-After."""
    window = now.replace(minute=0, second=0, microsecond=0)
    return window, int((window + timedelta(hours=1) - now).total_seconds()) + 1
