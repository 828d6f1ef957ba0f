"""Small helpers for the models: UTC timestamps (templates convert at the edge) and CHECK lists."""

from datetime import UTC, datetime


def sql_in(values: tuple[str, ...]) -> str:
    """A CHECK constraint's value list: 'a', 'b', 'c'."""
    return ", ".join(repr(v) for v in values)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
