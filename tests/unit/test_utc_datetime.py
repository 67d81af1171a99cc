"""UTCDateTime on SQLite writes and reads the text SQLAlchemy's DateTime does.

SQLite keeps a datetime as text, compared as text in every WHERE and ORDER BY: the
store's own conversion (``isoformat`` / ``fromisoformat``, cheaper than SQLAlchemy's
regular expression) must write what SQLAlchemy writes, microseconds always, and read
whatever is already stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from stepup.store.models.base import UTCDateTime

SQLITE = sqlite.dialect()
AWARE = [datetime(2026, 12, 6, 12, 51, 56, 651623, tzinfo=UTC),
         datetime(2026, 12, 6, 12, 51, 0, tzinfo=UTC),  # no microseconds
         datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
         datetime(2026, 12, 6, 15, 0, 0, 1, tzinfo=timezone(timedelta(hours=3)))]


def _bind(type_: Any, dialect: Any, value: Any) -> Any:
    process = type_._cached_bind_processor(dialect)
    return value if process is None else process(value)


def _result(type_: Any, dialect: Any, value: Any) -> Any:
    process = type_._cached_result_processor(dialect, None)
    return value if process is None else process(value)


@pytest.mark.parametrize("value", AWARE)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    naive_utc = value.astimezone(UTC).replace(tzinfo=None)
    stored = _bind(UTCDateTime(), SQLITE, value)
    assert stored == _bind(DateTime(), SQLITE, naive_utc)
    assert _result(UTCDateTime(), SQLITE, stored) == value
    assert _result(UTCDateTime(), SQLITE, stored).tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-12-06 12:51:56.651623", "2026-12-06 12:51:56",
                                  "2026-12-06 12:51:56.000000", "2026-12-06"])
def test_sqlite_reads_what_is_stored(text: str) -> None:
    assert _result(UTCDateTime(), SQLITE, text) == \
        _result(DateTime(), SQLITE, text).replace(tzinfo=UTC)


def test_none_and_naive() -> None:
    assert _bind(UTCDateTime(), SQLITE, None) is None
    assert _result(UTCDateTime(), SQLITE, None) is None
    with pytest.raises(ValueError, match="naive"):
        _bind(UTCDateTime(), SQLITE, datetime(2026, 12, 6, 12, 0))


def test_postgresql_keeps_aware_values() -> None:
    pg = postgresql.asyncpg.dialect()
    value = AWARE[-1]
    bound = _bind(UTCDateTime(), pg, value)
    assert bound == value and bound.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        _bind(UTCDateTime(), pg, datetime(2026, 12, 6, 12, 0))
