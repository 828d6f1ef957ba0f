"""SLA clock arithmetic: business time over calendars, holidays, time zones, DST and pauses.

Pure functions, no fixtures. Property tests run over randomly built calendars (working days,
opening hours, holidays, several time zones with DST); examples pin down the wall-clock results.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from portal.domain.sla_clock import (
    ZERO,
    BusinessCalendar,
    CalendarError,
    Due,
    add_business_time,
    business_time_between,
    due_time,
    hours,
    merge_intervals,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
UK_OFFICE = BusinessCalendar("Europe/London")                       # Mon-Fri 09:00-18:00
NY_OFFICE = BusinessCalendar("America/New_York")
EVERY_DAY_LONDON = BusinessCalendar("Europe/London", frozenset(range(7)))
H = timedelta(hours=1)
US = timedelta(microseconds=1)

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def local(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A local wall time (first occurrence if ambiguous) as an aware UTC datetime."""
    return datetime(y, mo, d, h, mi, tzinfo=zone).astimezone(UTC)


def wall(value: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an instant."""
    return value.astimezone(zone).replace(tzinfo=None)


# ---------------------------------------------------------------- strategies

# Zones whose DST changes happen away from local midnight (or that have none). A zone with a
# midnight change is exercised by an explicit example below (it shows a bug).
ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"]


@st.composite
def calendars(draw) -> BusinessCalendar:
    opens_min = draw(st.integers(0, 22 * 60))
    length = draw(st.integers(60, 24 * 60 - 1 - opens_min))
    closes_min = opens_min + length
    holidays = draw(st.frozensets(st.dates(date(2023, 1, 1), date(2026, 12, 31)), max_size=12))
    return BusinessCalendar(
        timezone=draw(st.sampled_from(ZONES)),
        working_days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        opens=time(opens_min // 60, opens_min % 60),
        closes=time(closes_min // 60, closes_min % 60),
        holidays=holidays,
    )


any_calendar = st.one_of(st.none(), calendars(), st.sampled_from([UK_OFFICE, NY_OFFICE, EVERY_DAY_LONDON]))
business_calendar = st.one_of(calendars(), st.sampled_from([UK_OFFICE, NY_OFFICE, EVERY_DAY_LONDON]))
instants = st.datetimes(datetime(2023, 6, 1), datetime(2025, 12, 31), timezones=st.just(UTC))
# Up to 40 business hours: with at least one working hour a week that stays well inside the
# calendar's three-year search horizon.
amounts = st.integers(0, 40 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))
positive_amounts = st.integers(1, 40 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))


# ---------------------------------------------------------------- properties: add_business_time

@PROPS
@given(start=instants, amount=amounts, cal=any_calendar)
def test_due_is_never_before_start(start, amount, cal):
    assert add_business_time(start, amount, cal) >= start


@PROPS
@given(start=instants, a=amounts, b=amounts, cal=any_calendar)
def test_more_hours_never_gives_an_earlier_due(start, a, b, cal):
    small, large = sorted((a, b))
    assert add_business_time(start, small, cal) <= add_business_time(start, large, cal)


@PROPS
@given(s1=instants, s2=instants, amount=amounts, cal=any_calendar)
def test_a_later_start_never_gives_an_earlier_due(s1, s2, amount, cal):
    early, late = sorted((s1, s2))
    assert add_business_time(early, amount, cal) <= add_business_time(late, amount, cal)


@PROPS
@given(start=instants, amount=amounts, end=instants)
def test_24x7_is_plain_addition(start, amount, end):
    assert add_business_time(start, amount, None) == start + amount
    assert business_time_between(start, end, None) == max(end - start, ZERO)


@PROPS
@given(start=instants, a=amounts, b=positive_amounts, cal=any_calendar)
def test_adding_in_two_steps_equals_adding_at_once_when_the_second_step_is_positive(start, a, b, cal):
    assert add_business_time(add_business_time(start, a, cal), b, cal) == add_business_time(start, a + b, cal)


@PROPS
@given(start=instants, a=amounts, b=amounts, cal=any_calendar)
def test_adding_in_two_steps_only_ever_skips_non_business_time(start, a, b, cal):
    """The weaker, always-true form. With "earliest instant" semantics add(s, a) may land exactly
    on a window's closing instant; adding zero from there starts the clock when the office next
    opens (a clock never starts while the office is closed), so with b == 0 the two-step result can
    be later than add(s, a + b) — but only by time that is not business time."""
    once = add_business_time(start, a + b, cal)
    twice = add_business_time(add_business_time(start, a, cal), b, cal)
    assert twice >= once
    assert business_time_between(once, twice, cal) == ZERO
    assert business_time_between(start, twice, cal) == a + b


def test_two_steps_with_a_zero_second_step_differ_at_a_window_end():
    """The counterexample to the exact law with b == 0 (a > 0): Friday 17:00 + 1h is Friday 18:00,
    the closing instant; adding 0h from there is Monday 09:00, the next working instant."""
    friday_5pm = local(LONDON, 2024, 6, 7, 17)
    once = add_business_time(friday_5pm, H, UK_OFFICE)
    assert wall(once, LONDON) == datetime(2024, 6, 7, 18)
    assert wall(add_business_time(once, ZERO, UK_OFFICE), LONDON) == datetime(2024, 6, 10, 9)


@PROPS
@given(start=instants, amount=amounts, cal=any_calendar)
def test_business_time_between_start_and_due_is_the_amount(start, amount, cal):
    assert business_time_between(start, add_business_time(start, amount, cal), cal) == amount


@PROPS
@given(start=instants, amount=positive_amounts, cal=any_calendar)
def test_due_is_the_earliest_instant(start, amount, cal):
    due = add_business_time(start, amount, cal)
    assert business_time_between(start, due - US, cal) < amount


@PROPS
@given(start=instants, end=instants, cal=any_calendar)
def test_business_time_never_exceeds_elapsed_time(start, end, cal):
    assert ZERO <= business_time_between(start, end, cal) <= max(end - start, ZERO)


@PROPS
@given(start=instants, mid=instants, end=instants, cal=business_calendar)
def test_business_time_is_additive(start, mid, end, cal):
    start, mid, end = sorted((start, mid, end))
    assert business_time_between(start, end, cal) == (
        business_time_between(start, mid, cal) + business_time_between(mid, end, cal))


# ---------------------------------------------------------------- examples: business hours

def test_one_hour_opened_friday_evening_is_due_monday_morning():
    due = add_business_time(local(LONDON, 2024, 6, 7, 17, 30), H, UK_OFFICE)
    assert wall(due, LONDON) == datetime(2024, 6, 10, 9, 30)


def test_a_start_before_opening_counts_from_opening():
    start = local(LONDON, 2024, 6, 4, 7)
    assert wall(add_business_time(start, H, UK_OFFICE), LONDON) == datetime(2024, 6, 4, 10)
    assert wall(add_business_time(start, ZERO, UK_OFFICE), LONDON) == datetime(2024, 6, 4, 9)
    assert business_time_between(start, local(LONDON, 2024, 6, 4, 10), UK_OFFICE) == H


def test_a_start_after_closing_counts_from_the_next_opening():
    assert wall(add_business_time(local(LONDON, 2024, 6, 4, 19), 2 * H, UK_OFFICE), LONDON) == \
        datetime(2024, 6, 5, 11)


def test_weekend_crossing():
    start = local(LONDON, 2024, 6, 7, 16)               # Friday
    due = add_business_time(start, 4 * H, UK_OFFICE)
    assert wall(due, LONDON) == datetime(2024, 6, 10, 11)   # 2h Friday, 2h Monday
    assert business_time_between(start, due, UK_OFFICE) == 4 * H


def test_multi_day_target():
    # 20 business hours from Wednesday 10:00: 8h Wed, 9h Thu, 3h Fri.
    due = add_business_time(local(LONDON, 2024, 6, 5, 10), 20 * H, UK_OFFICE)
    assert wall(due, LONDON) == datetime(2024, 6, 7, 12)


def test_a_monday_holiday_pushes_to_tuesday():
    cal = BusinessCalendar("Europe/London", holidays=frozenset({date(2024, 8, 26)}))
    start = local(LONDON, 2024, 8, 23, 17)              # Friday before the August bank holiday
    due = add_business_time(start, 2 * H, cal)
    assert wall(due, LONDON) == datetime(2024, 8, 27, 10)
    assert business_time_between(start, due, cal) == 2 * H
    assert business_time_between(local(LONDON, 2024, 8, 26, 0), local(LONDON, 2024, 8, 27, 0), cal) == ZERO


def test_a_midweek_holiday_is_skipped():
    cal = BusinessCalendar("Europe/London", holidays=frozenset({date(2024, 6, 5)}))
    due = add_business_time(local(LONDON, 2024, 6, 4, 17), 3 * H, cal)
    assert wall(due, LONDON) == datetime(2024, 6, 6, 11)


def test_holidays_are_local_dates_not_utc_dates():
    # Tokyo's Monday holiday begins at 15:00 UTC on Sunday.
    tokyo = ZoneInfo("Asia/Tokyo")
    cal = BusinessCalendar("Asia/Tokyo", holidays=frozenset({date(2024, 7, 15)}))
    due = add_business_time(local(tokyo, 2024, 7, 12, 17), 2 * H, cal)
    assert wall(due, tokyo) == datetime(2024, 7, 16, 10)


def test_zero_target_inside_hours_is_due_immediately():
    start = local(LONDON, 2024, 6, 4, 11, 15)
    assert add_business_time(start, ZERO, UK_OFFICE) == start


def test_start_given_in_another_zone_is_the_same_instant():
    start_utc = local(LONDON, 2024, 6, 7, 17, 30)
    start_ny = start_utc.astimezone(NEW_YORK)
    assert add_business_time(start_ny, H, UK_OFFICE) == add_business_time(start_utc, H, UK_OFFICE)


# ---------------------------------------------------------------- examples: DST

@pytest.mark.parametrize(("zone", "start_local", "due_local", "due_utc"), [
    # spring forward
    (LONDON, datetime(2024, 3, 29, 14), datetime(2024, 4, 1, 13), datetime(2024, 4, 1, 12, tzinfo=UTC)),
    (NEW_YORK, datetime(2024, 3, 8, 14), datetime(2024, 3, 11, 13), datetime(2024, 3, 11, 17, tzinfo=UTC)),
    # fall back
    (LONDON, datetime(2024, 10, 25, 14), datetime(2024, 10, 28, 13), datetime(2024, 10, 28, 13, tzinfo=UTC)),
    (NEW_YORK, datetime(2024, 11, 1, 14), datetime(2024, 11, 4, 13), datetime(2024, 11, 4, 18, tzinfo=UTC)),
], ids=["london-spring", "new-york-spring", "london-autumn", "new-york-autumn"])
def test_eight_hours_over_a_dst_weekend_lands_at_the_local_wall_time(zone, start_local, due_local, due_utc):
    cal = BusinessCalendar(zone.key)
    start = start_local.replace(tzinfo=zone).astimezone(UTC)
    due = add_business_time(start, 8 * H, cal)    # 4h on Friday, 4h on Monday
    assert wall(due, zone) == due_local
    assert due == due_utc
    assert business_time_between(start, due, cal) == 8 * H


@pytest.mark.parametrize(("start_local", "due_local", "due_utc"), [
    # Saturday 14:00 GMT: 4h Saturday, then 4h on Sunday 31 March, which opens at 09:00 BST.
    (datetime(2024, 3, 30, 14), datetime(2024, 3, 31, 13), datetime(2024, 3, 31, 12, tzinfo=UTC)),
    # Saturday 14:00 BST: 4h Saturday, then 4h on Sunday 27 October, which opens at 09:00 GMT.
    (datetime(2024, 10, 26, 14), datetime(2024, 10, 27, 13), datetime(2024, 10, 27, 13, tzinfo=UTC)),
], ids=["spring", "autumn"])
def test_eight_hours_across_the_change_day_itself(start_local, due_local, due_utc):
    start = start_local.replace(tzinfo=LONDON).astimezone(UTC)
    due = add_business_time(start, 8 * H, EVERY_DAY_LONDON)
    assert wall(due, LONDON) == due_local
    assert due == due_utc


@pytest.mark.parametrize("zone", [LONDON, NEW_YORK], ids=["london", "new-york"])
def test_24x7_over_dst_is_plain_utc_addition(zone):
    for y, mo, d in ((2024, 3, 30), (2024, 3, 9), (2024, 10, 26), (2024, 11, 2)):
        start = local(zone, y, mo, d, 12)
        due = add_business_time(start, 24 * H, None)
        assert due == start + 24 * H
        assert business_time_between(start, due, None) == 24 * H
    # Over spring forward, 24 elapsed hours read as 13:00 the next day on a local clock.
    assert wall(add_business_time(local(LONDON, 2024, 3, 30, 12), 24 * H, None), LONDON) == \
        datetime(2024, 3, 31, 13)


def test_a_window_that_spans_the_spring_forward_gap_is_shorter():
    cal = BusinessCalendar("Europe/London", frozenset(range(7)), time(0, 30), time(3, 0))
    assert cal.window(date(2024, 3, 30)) == (datetime(2024, 3, 30, 0, 30, tzinfo=UTC),
                                             datetime(2024, 3, 30, 3, 0, tzinfo=UTC))
    # 00:30 GMT to 03:00 BST is 1.5 real hours.
    assert cal.window(date(2024, 3, 31)) == (datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
                                             datetime(2024, 3, 31, 2, 0, tzinfo=UTC))
    start = local(LONDON, 2024, 3, 31, 0, 30)
    due = add_business_time(start, 2 * H, cal)  # 1.5h on Sunday, 0.5h on Monday from 00:30 BST
    assert wall(due, LONDON) == datetime(2024, 4, 1, 1, 0)
    assert business_time_between(start, due, cal) == 2 * H


def test_a_window_that_spans_the_fall_back_overlap_is_longer():
    cal = BusinessCalendar("Europe/London", frozenset(range(7)), time(0, 30), time(3, 0))
    # 00:30 BST (23:30 UTC the day before) to 03:00 GMT is 3.5 real hours.
    assert cal.window(date(2024, 10, 27)) == (datetime(2024, 10, 26, 23, 30, tzinfo=UTC),
                                              datetime(2024, 10, 27, 3, 0, tzinfo=UTC))
    start = local(LONDON, 2024, 10, 27, 0, 30)
    assert add_business_time(start, 3 * H + 30 * timedelta(minutes=1), cal) == \
        datetime(2024, 10, 27, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "day", "opens", "closes", "expected"), [
    # London jumps from 01:00 GMT to 02:00 BST at 01:00 UTC on 31 March 2024.
    ("Europe/London", date(2024, 3, 31), time(1, 30), time(4, 0),
     (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), datetime(2024, 3, 31, 3, 0, tzinfo=UTC))),
    # New York jumps from 02:00 EST to 03:00 EDT at 07:00 UTC on 10 March 2024.
    ("America/New_York", date(2024, 3, 10), time(2, 30), time(4, 0),
     (datetime(2024, 3, 10, 7, 0, tzinfo=UTC), datetime(2024, 3, 10, 8, 0, tzinfo=UTC))),
    # A closing time inside the gap closes at the jump too.
    ("Europe/London", date(2024, 3, 31), time(0, 0), time(1, 30),
     (datetime(2024, 3, 31, 0, 0, tzinfo=UTC), datetime(2024, 3, 31, 1, 0, tzinfo=UTC))),
], ids=["london-opens-in-gap", "new-york-opens-in-gap", "london-closes-in-gap"])
def test_an_opening_or_closing_time_inside_the_gap_is_the_instant_the_clocks_jump_to(
        zone, day, opens, closes, expected):
    """_local_to_utc promises "in a spring-forward gap ... use the instant the clocks jump to".
    BUG: it retries with fold=1, which for a gap applies the *post*-transition offset and yields
    an instant one hour before the wall time, i.e. before the jump (01:30 London -> 00:30 UTC,
    which is 00:30 GMT). The office then opens an hour early on the change day."""
    cal = BusinessCalendar(zone, frozenset(range(7)), opens, closes)
    assert cal.window(day) == expected


def test_business_time_never_exceeds_real_time_over_a_midnight_dst_change():
    """Santiago springs forward at local midnight (00:00 -> 01:00 on Sunday 8 September 2024).
    A window opening at 00:00 on that day is moved to 23:00 Saturday by the fold=1 handling of the
    gap (see above), so it overlaps Saturday's window and the overlap counts twice.
    BUG: three real hours yield 3h59m of business time."""
    cal = BusinessCalendar("America/Santiago", frozenset(range(7)), time(0, 0), time(23, 59))
    start, end = datetime(2024, 9, 8, 2, 0, tzinfo=UTC), datetime(2024, 9, 8, 5, 0, tzinfo=UTC)
    assert business_time_between(start, end, cal) <= end - start


# ---------------------------------------------------------------- due_time with pauses

MON_10 = local(LONDON, 2024, 6, 3, 10)            # Monday 10:00 BST


def at_london(d: int, h: int, mi: int = 0) -> datetime:
    return local(LONDON, 2024, 6, d, h, mi)


def test_due_time_without_pauses_is_add_business_time():
    assert due_time(MON_10, 4 * H, UK_OFFICE) == Due(at_london(3, 14), ZERO)


def test_a_pause_inside_business_hours_moves_the_due_by_the_paused_business_time():
    due = due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 11), at_london(3, 12))])
    assert due == Due(at_london(3, 15), H)


def test_a_pause_over_the_night_counts_only_its_business_hours():
    # 8h from Monday 10:00 is due Monday 18:00; paused 17:00 Monday to 10:00 Tuesday covers 2 business hours.
    due = due_time(MON_10, 8 * H, UK_OFFICE, [(at_london(3, 17), at_london(4, 10))])
    assert due == Due(at_london(4, 11), 2 * H)


def test_a_pause_entirely_at_night_moves_nothing():
    due = due_time(at_london(3, 17), 4 * H, UK_OFFICE, [(at_london(3, 20), at_london(4, 8))])
    assert due == Due(at_london(4, 12), ZERO)


def test_an_open_pause_stops_the_clock():
    due = due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 11), None)])
    assert due.at is None


def test_a_pause_after_the_due_changes_nothing():
    assert due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 15), at_london(3, 17))]) == Due(at_london(3, 14), ZERO)
    assert due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 15), None)]) == Due(at_london(3, 14), ZERO)
    # Starting exactly at the due: the target had already fallen due.
    assert due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 14), None)]) == Due(at_london(3, 14), ZERO)


def test_overlapping_pauses_are_not_double_counted():
    pauses = [(at_london(3, 11), at_london(3, 12)), (at_london(3, 11, 30), at_london(3, 12, 30)),
              (at_london(3, 11), at_london(3, 12))]
    assert due_time(MON_10, 4 * H, UK_OFFICE, pauses) == Due(at_london(3, 15, 30), 90 * timedelta(minutes=1))


def test_a_pause_pushed_into_range_by_an_earlier_pause_counts():
    # The first pause moves the due from 14:00 to 17:00, so the 16:00 pause now begins before it.
    pauses = [(at_london(3, 16), at_london(3, 16, 30)), (at_london(3, 11), at_london(3, 14))]
    assert due_time(MON_10, 4 * H, UK_OFFICE, pauses) == Due(at_london(3, 17, 30), 3.5 * H)


def test_a_pause_begun_before_the_start_counts_from_the_start():
    due = due_time(MON_10, 4 * H, UK_OFFICE, [(at_london(3, 8), at_london(3, 11))])
    assert due == Due(at_london(3, 15), H)


def test_pauses_on_a_24x7_clock_are_plain_elapsed_time():
    start = datetime(2024, 6, 1, 22, tzinfo=UTC)
    due = due_time(start, 2 * H, None, [(start + H, start + 3 * H)])
    assert due == Due(start + 4 * H, 2 * H)


def test_merge_intervals():
    a, b, c, d = (datetime(2024, 1, 1, h, tzinfo=UTC) for h in (1, 2, 3, 4))
    assert merge_intervals([(c, d), (a, b)]) == [(a, b), (c, d)]
    assert merge_intervals([(a, c), (b, d)]) == [(a, d)]
    assert merge_intervals([(a, b), (b, c)]) == [(a, c)]
    assert merge_intervals([(b, a)]) == []
    assert merge_intervals([(a, b), (b, None), (c, d)]) == [(a, None)]
    assert merge_intervals([(c, None), (a, b)]) == [(a, b), (c, None)]


pauses_strategy = st.lists(
    st.tuples(instants, st.one_of(st.none(), st.integers(0, 72 * 3600).map(lambda s: timedelta(seconds=s)))),
    max_size=4,
).map(lambda raw: [(s, None if length is None else s + length) for s, length in raw])


@PROPS
@given(start=instants, target=positive_amounts, cal=any_calendar, pauses=pauses_strategy)
def test_due_time_counts_exactly_the_target_outside_pauses(start, target, cal, pauses):
    due = due_time(start, target, cal, pauses)
    plain = add_business_time(start, target, cal)
    if due.at is None:
        assert any(end is None and max(s, start) < plain for s, end in pauses)
        return
    assert due.at >= plain
    paused_in_range = sum((business_time_between(max(s, start), min(e or due.at, due.at), cal)
                           for s, e in merge_intervals(pauses)), ZERO)
    assert business_time_between(start, due.at, cal) - paused_in_range == target


@PROPS
@given(start=instants, target=amounts, cal=any_calendar, pauses=pauses_strategy)
def test_pauses_never_bring_the_due_forward(start, target, cal, pauses):
    assume(all(e is not None for _, e in pauses))
    assert due_time(start, target, cal, pauses).at >= add_business_time(start, target, cal)


# ---------------------------------------------------------------- invalid input

@pytest.mark.parametrize(("kwargs", "error"), [
    ({"opens": time(18), "closes": time(9)}, CalendarError),
    ({"opens": time(9), "closes": time(9)}, CalendarError),
    ({"working_days": frozenset()}, CalendarError),
    ({"working_days": frozenset({7})}, CalendarError),
    ({"working_days": frozenset({-1, 0})}, CalendarError),
    ({"timezone": "Mars/Olympus_Mons"}, ZoneInfoNotFoundError),
    ({"timezone": "../../etc/passwd"}, ValueError),
], ids=["closes-before-opens", "closes-at-opens", "no-working-days", "day-7", "day-minus-1", "unknown-zone",
        "path-zone"])
def test_invalid_calendars_raise(kwargs, error):
    with pytest.raises(error):
        BusinessCalendar(**kwargs)


def test_calendar_error_is_a_value_error():
    assert issubclass(CalendarError, ValueError)


def test_naive_datetimes_raise():
    naive, aware = datetime(2024, 6, 3, 10), MON_10
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(naive, H, UK_OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(naive, H, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(naive, aware, UK_OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(aware, naive, None)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_time(naive, H, UK_OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_time(aware, 4 * H, UK_OFFICE, [(datetime(2024, 6, 3, 11), None)])


def test_negative_amount_raises():
    with pytest.raises(ValueError):
        add_business_time(MON_10, -H, UK_OFFICE)


def test_a_calendar_with_no_working_time_raises_calendar_error():
    mondays = frozenset(date(2024, 6, 3) + timedelta(weeks=n) for n in range(52 * 4))
    cal = BusinessCalendar("Europe/London", frozenset({0}), holidays=mondays)
    with pytest.raises(CalendarError):
        add_business_time(MON_10, H, cal)


def test_a_long_target_on_a_working_calendar_gets_a_due_time():
    """Admins may set targets up to 8760 hours (sla_admin.HOURS_MAX). 8000 business hours on a
    Mon-Fri 09:00-18:00 calendar is about 889 working days (3.4 years).
    BUG: _windows_from stops after MAX_SEARCH_DAYS (3 * 366) calendar days counted from the start,
    not after three years *without* working time, so it raises CalendarError ("no working time in
    the next three years") although the calendar has working time every week."""
    due = add_business_time(MON_10, 8000 * H, UK_OFFICE)
    assert business_time_between(MON_10, due, UK_OFFICE) == 8000 * H


def test_hours_helper():
    assert hours(2) == 2 * H
    assert hours(1.5) == 90 * timedelta(minutes=1)
