"""Checks for text that PostgreSQL cannot store."""

from __future__ import annotations

NUL_MESSAGE = "Remove the NUL (\\0) character; it cannot be stored."
SURROGATE_MESSAGE = "Contains characters that are not valid Unicode text."


def unstorable_reason(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL byte, a lone surrogate), or None if it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None
