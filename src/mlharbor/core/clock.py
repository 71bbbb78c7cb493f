"""One place for "now", always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from mlharbor.errors import InvalidArgument


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC (SQLite returns naive values) and convert aware ones.

    InvalidArgument when the instant cannot be expressed in UTC (``0001-01-01T00:00+14:00``).
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{value.isoformat()} cannot be expressed in UTC") from None
