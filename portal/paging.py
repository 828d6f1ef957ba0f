"""Ids, whole numbers and pages read from query strings, forms and JSON: the one place for each check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal.services.errors import ValidationFailed

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
PAGE_MAX = 100_000
PER_PAGE_MAX = 100


def is_digits(value: Any) -> bool:
    """True for a non-empty string of ASCII digits only (no '٣', no '+1', no ' 1')."""
    return isinstance(value, str) and value.isascii() and value.isdecimal()


def as_id(value: Any) -> int | None:
    """A database id from an int or a string of ASCII digits; None for anything else (bools too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif is_digits(value) and len(value) <= 12:  # longer is past MAX_ID (and int() refuses over 4,300 digits)
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_ID else None


def whole_number(raw: Any, low: int, high: int) -> int | None:
    """`raw` (an int or ASCII digits) when it lies in low..high; None otherwise."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif is_digits(raw) and len(raw) <= 12:
        number = int(raw)
    else:
        return None
    return number if low <= number <= high else None


def page_args(args: Any, default_per_page: int, strict: bool = False,
              errors: dict[str, str] | None = None) -> tuple[int, int]:
    """`page` and `per_page` from a mapping of strings.

    A missing value takes its default. A value past the top is clamped (page past the end: the
    last page is shown by the caller) unless `strict`, where it is an error like any other bad
    value. Errors are added to `errors` when given; with `strict` and no `errors`, they raise.
    """
    found: dict[str, str] = {}
    values = []
    for name, default, top in (("page", 1, PAGE_MAX), ("per_page", default_per_page, PER_PAGE_MAX)):
        raw = (args.get(name) or "").strip() if isinstance(args.get(name) or "", str) else args.get(name)
        if raw in ("", None):
            values.append(default)
            continue
        # A very long run of digits is simply "past the top" (and int() refuses over 4,300 digits).
        number = 10**12 if is_digits(raw) and len(raw) > 12 else whole_number(raw, 1, 10**12)
        if number is None or (strict and number > top):
            found[name] = f"{name} must be a whole number from 1 to {top}."
            values.append(default)
        else:
            values.append(min(number, top))
    if found:
        if errors is not None:
            errors.update(found)
        elif strict:
            raise ValidationFailed(found, "Some filters are not valid.")
    return values[0], values[1]


@dataclass
class Page:
    """One page of a list, with what a pager needs.

    Numbered pages (page, pages) or, for lists paged by position, the positions of the first and
    last rows (`prev_cursor`, `next_cursor`: "" at either end). `total` is exact unless
    `total_exact` is False, when it is the cap the count stopped at ("more than 10,000").
    """

    items: list
    total: int
    page: int
    per_page: int
    total_exact: bool = True
    prev_cursor: str | None = None
    next_cursor: str | None = None
    highlights: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)   # row id -> its place in the list (a keyset cursor)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return bool(self.prev_cursor) if self.prev_cursor is not None else self.page > 1

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor) if self.next_cursor is not None else self.page < self.pages


def clamp_page(page: int, total: int, per_page: int) -> int:
    """Past the end (an old link, a typed number): the last page."""
    return min(page, max(1, -(-total // per_page)))
