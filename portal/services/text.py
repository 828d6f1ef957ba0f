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


def clean_text(errors: dict[str, str], name: str, value: object, maximum: int, required: bool = True,
               missing: str = "This field is required.") -> str:
    """`value` stripped, or an error under `name`: not text, unstorable, missing, or over `maximum`.

    The one check for every name, title, reason and body a person types.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "Must be text."
        return ""
    value = value.strip()
    problem = unstorable_reason(value)
    if problem:
        errors[name] = problem
    elif required and not value:
        errors[name] = missing
    elif len(value) > maximum:
        errors[name] = f"Use at most {maximum} characters (got {len(value)})."
    return value
