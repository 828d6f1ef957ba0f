"""UTC timestamps for the models: the database stores UTC, templates convert at the edge."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
