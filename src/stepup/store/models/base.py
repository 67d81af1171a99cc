"""The column types every model uses and the declarative base."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from stepup.domain.policy import MethodStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite, the text SQLAlchemy's DateTime writes and reads (microseconds always),
    # by the standard library in one call a value instead of its formatting and regular
    # expression around the two above (bench/README.md, "SQLite's datetimes").
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")
        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            return None if value is None else self.process_result_value(
                datetime.fromisoformat(value), dialect)
        return process


class MethodStatusType(TypeDecorator[MethodStatus]):
    """A method's status: stored as its value ("pending", "enabled"), read as the enum."""

    impl = String(10)
    cache_ok = True

    def process_bind_param(self, value: MethodStatus | str | None, dialect: Dialect
                           ) -> str | None:
        return None if value is None else MethodStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect
                             ) -> MethodStatus | None:
        return None if value is None else MethodStatus(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(),
                                                     dict[str, Any]: JSON,
                                                     list[str]: JSON}
