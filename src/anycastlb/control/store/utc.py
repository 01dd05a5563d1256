"""Datetimes that leave the store exactly as they entered: aware, in UTC.

SQLite has no time zone type: SQLAlchemy stores ``2026-01-02 03:04:05.000006`` and reads back a
naive datetime, so an API answer read from SQLite said ``created_at: "...05.000006"`` where the
create answer had said ``"...05.000006Z"``. PostgreSQL's ``timestamptz`` returns aware values, in
the session's zone. This column type makes both the same: values are written as UTC (a naive value
is refused, since nobody can tell which zone it meant) and read back as aware UTC.
"""

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the store; pass an aware one (UTC)"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC by process_bind_param
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
