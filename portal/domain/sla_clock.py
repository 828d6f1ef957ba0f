"""SLA clock arithmetic: business hours, holidays, time zones, pauses. Pure functions over plain values.

A calendar maps wall-clock time onto "business time": the working windows of each local day
(opening to closing, on working days that are not holidays). Every window is computed in the
calendar's own time zone, day by day, so DST changes shift the UTC instants the way a local
office sees them. `None` as calendar means 24x7: business time is plain elapsed time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZERO = timedelta(0)
# A guard against calendars with no working time at all: give up after this many closed days in a row.
MAX_SEARCH_DAYS = 3 * 366


class CalendarError(ValueError):
    """The calendar cannot produce a due time (for instance: no working time in three years)."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days (0 = Monday), daily opening hours in `timezone`, and holidays (local dates)."""

    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.closes <= self.opens:
            raise CalendarError("closing time must be after opening time")
        if not self.working_days or not set(self.working_days) <= set(range(7)):
            raise CalendarError("working days must be a non-empty subset of 0..6 (Monday..Sunday)")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants the office opens and closes on local `day`, or None if closed all day."""
        if not self.is_working_day(day):
            return None
        zone = self.zone
        start = _local_to_utc(datetime.combine(day, self.opens), zone)
        end = _local_to_utc(datetime.combine(day, self.closes), zone)
        return (start, end) if end > start else None


def _local_to_utc(naive_local: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as UTC. In an autumn overlap use the first occurrence. In a spring-forward
    gap the wall time does not exist: use the instant the clocks jump (when the local clock first
    reads a time at or after the one asked for)."""
    aware = naive_local.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive_local:
        return aware.astimezone(UTC)
    # Inside a gap: fold=1 reads the time with the later offset (an instant before the jump) and
    # fold=0 with the earlier one (an instant after it). Search between them, to the second.
    lo = naive_local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = aware.astimezone(UTC)
    if lo > hi:
        lo, hi = hi, lo
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive_local:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _windows_from(cal: BusinessCalendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working windows (UTC) that end after `start`, in order, clipped to begin at `start` or later.

    Endless for a calendar with working time; raises CalendarError after three years without any.
    """
    day = start.astimezone(cal.zone).date() - timedelta(days=1)  # a window may straddle UTC midnight
    closed_days = 0
    while closed_days <= MAX_SEARCH_DAYS:
        window = cal.window(day)
        day += timedelta(days=1)
        if window is None:
            closed_days += 1
            continue
        closed_days = 0
        opens, closes = window
        if closes <= start:
            continue
        yield max(opens, start), closes
    raise CalendarError("the calendar has no working time in three years")


def add_business_time(start: datetime, amount: timedelta, cal: BusinessCalendar | None) -> datetime:
    """The earliest instant at which `amount` of business time has passed since `start`."""
    start = _require_aware(start, "start")
    if amount < ZERO:
        raise ValueError("amount must not be negative")
    if cal is None:
        return start + amount
    remaining = amount
    for opens, closes in _windows_from(cal, start):
        length = closes - opens
        if remaining <= length:
            # Zero remaining lands on the window's first instant: a clock that starts outside hours
            # begins when the office opens.
            return opens + remaining
        remaining -= length
    raise CalendarError("unreachable")  # pragma: no cover - _windows_from raises first


def business_time_between(start: datetime, end: datetime, cal: BusinessCalendar | None) -> timedelta:
    """How much business time lies in [start, end)."""
    start = _require_aware(start, "start")
    end = _require_aware(end, "end")
    if end <= start:
        return ZERO
    if cal is None:
        return end - start
    total = ZERO
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    last = end.astimezone(cal.zone).date() + timedelta(days=1)
    while day <= last:
        window = cal.window(day)
        if window is not None:
            lo, hi = max(window[0], start), min(window[1], end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


Interval = tuple[datetime, datetime | None]


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals; an open end (None) swallows everything after it."""
    ordered = sorted(intervals, key=lambda iv: iv[0])
    merged: list[Interval] = []
    for start, end in ordered:
        if end is not None and end <= start:
            continue
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None:
                break
            if start <= last_end:
                merged[-1] = (last_start, None if end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


@dataclass(frozen=True)
class Due:
    """A target's due time, or why it has none right now."""

    at: datetime | None          # None while paused (an open pause) — the clock is stopped
    paused_business_time: timedelta


def due_time(
    start: datetime,
    target: timedelta,
    cal: BusinessCalendar | None,
    pauses: Iterable[Interval] = (),
) -> Due:
    """When a target of `target` business time, started at `start`, falls due.

    Business time inside a pause does not count, so each pause that begins before the (moving)
    due time pushes it out by the business time it covers. A pause still open stops the clock.
    Pauses that begin after the due time change nothing: the target had already fallen due.
    """
    due = add_business_time(start, target, cal)
    paused = ZERO
    for pause_start, pause_end in merge_intervals(pauses):
        pause_start = max(_require_aware(pause_start, "pause start"), start)
        if pause_start >= due:
            break
        if pause_end is None:
            return Due(None, paused)
        covered = business_time_between(pause_start, pause_end, cal)
        paused += covered
        due = add_business_time(due, covered, cal) if covered > ZERO else due
    return Due(due, paused)


def hours(value: float | int) -> timedelta:
    """Hours as a timedelta (targets are stored as hours)."""
    return timedelta(hours=float(value))
