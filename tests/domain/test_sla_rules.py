"""SLA rules over a clock's recorded facts: intervals, met or late, breach type, at risk, states, calendars.

Pure functions, no fixtures. Property tests run over random event histories and target facts;
examples pin down the cases people reason about.
"""

from __future__ import annotations

import ast
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain import sla_rules
from portal.domain.sla_clock import BusinessCalendar
from portal.domain.sla_rules import (
    TARGET_STATES,
    ClockEvent,
    ClockIntervals,
    MetDecision,
    TargetClock,
    TargetState,
    breach_type,
    calendar_snapshot,
    clears_at_risk,
    clock_intervals,
    hours_overdue,
    settle_met,
    target_state,
    target_states,
    to_calendar,
    warn_point,
)

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H = timedelta(hours=1)
T0 = datetime(2024, 6, 3, 10, tzinfo=UTC)


def at(hours: float) -> datetime:
    """T0 plus some hours."""
    return T0 + timedelta(hours=hours)


# ---------------------------------------------------------------- the domain stays pure

def test_the_rules_module_imports_only_the_standard_library_and_the_domain():
    """The architecture's promise: no Flask, no SQLAlchemy, no models in portal/domain/."""
    tree = ast.parse(Path(sla_rules.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    foreign = {name for name in imported
               if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("portal.domain")}
    assert foreign == set()
    assert "portal.domain" in imported or "portal.domain.sla_clock" in imported  # it does use the clock


# ---------------------------------------------------------------- intervals: strategies

# "resumed" comes in two flavours: a plain resume ends a status pause, a reopen ends a resolution stop.
KINDS = ["started", "paused", "resumed", "reopened", "resolved", "responded", "exempted", "recalculated",
         "at_risk", "breached"]


def _event(kind: str, when: datetime) -> ClockEvent:
    """A history entry; "reopened" is the resume that reopens a resolved request."""
    if kind == "reopened":
        return ClockEvent("resumed", when, {"reason": "reopened", "to": "in_progress"})
    if kind == "resumed":
        return ClockEvent("resumed", when, {"from": "waiting_on_customer", "to": "in_progress"})
    return ClockEvent(kind, when, None)


@st.composite
def histories(draw) -> list[ClockEvent]:
    """A well-formed history: any kinds, in time order (ties allowed, as events at one instant)."""
    steps = draw(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 48 * 60)), max_size=25))
    events, when = [], T0
    for kind, minutes in steps:
        when += timedelta(minutes=minutes)
        events.append(_event(kind, when))
    return events


def is_plain_resume(e: ClockEvent) -> bool:
    """A resume that ends a status pause."""
    return e.kind == "resumed" and (e.detail or {}).get("reason") != "reopened"


def is_reopen(e: ClockEvent) -> bool:
    """A resume that reopens a resolved request."""
    return e.kind == "resumed" and (e.detail or {}).get("reason") == "reopened"


def _ordered_and_disjoint(intervals: tuple) -> bool:
    """Each interval starts at or before its end, and at or after the previous one ends."""
    for start, end in intervals:
        if end is not None and end < start:
            return False
    for (_, prev_end), (start, _) in zip(intervals, intervals[1:], strict=False):
        if prev_end is None or start < prev_end:
            return False
    return True


# ---------------------------------------------------------------- intervals: properties

@PROPS
@given(events=histories())
def test_pauses_are_ordered_disjoint_and_only_the_last_can_be_open(events):
    result = clock_intervals(events)
    assert _ordered_and_disjoint(result.status_pauses)
    assert all(end is not None for _, end in result.status_pauses[:-1])
    if result.open_pause_since is None:
        assert all(end is not None for _, end in result.status_pauses)
    else:
        assert result.status_pauses[-1] == (result.open_pause_since, None)


@PROPS
@given(events=histories())
def test_resolution_stops_are_ordered_disjoint_and_closed(events):
    stops = clock_intervals(events).resolution_stops
    assert _ordered_and_disjoint(stops)
    assert all(end is not None for _, end in stops)


@PROPS
@given(events=histories())
def test_the_clock_is_paused_exactly_when_the_last_pause_or_plain_resume_was_a_pause(events):
    """An independent reading of the history: only "paused" and plain "resumed" events matter."""
    toggles = [e for e in events if e.kind == "paused" or is_plain_resume(e)]
    paused = bool(toggles) and toggles[-1].kind == "paused"
    assert (clock_intervals(events).open_pause_since is not None) == paused


@PROPS
@given(events=histories())
def test_every_interval_runs_between_events_of_the_right_kinds(events):
    result = clock_intervals(events)
    pause_starts = {e.at for e in events if e.kind == "paused"}
    plain_resumes = {e.at for e in events if is_plain_resume(e)}
    resolutions = {e.at for e in events if e.kind == "resolved"}
    reopens = {e.at for e in events if is_reopen(e)}
    assert all(s in pause_starts and (e is None or e in plain_resumes) for s, e in result.status_pauses)
    assert all(s in resolutions and e in reopens for s, e in result.resolution_stops)


@PROPS
@given(events=histories())
def test_reopening_never_ends_a_status_pause_and_other_kinds_change_nothing(events):
    result = clock_intervals(events)
    pauses_only = clock_intervals([e for e in events if e.kind == "paused" or is_plain_resume(e)])
    assert (pauses_only.status_pauses, pauses_only.open_pause_since) == (result.status_pauses, result.open_pause_since)
    stops_only = clock_intervals([e for e in events if e.kind == "resolved" or is_reopen(e)])
    assert stops_only.resolution_stops == result.resolution_stops


@PROPS
@given(events=histories())
def test_plain_tuples_read_the_same_as_clock_events(events):
    assert clock_intervals([(e.kind, e.at, e.detail) for e in events]) == clock_intervals(events)


# ---------------------------------------------------------------- intervals: examples

def test_a_pause_resumed_and_paused_again_leaves_one_closed_and_one_open_pause():
    events = [ClockEvent("started", at(0)), ClockEvent("paused", at(1), {"status": "waiting_on_customer"}),
              ClockEvent("resumed", at(2), {"from": "waiting_on_customer"}), ClockEvent("paused", at(3))]
    assert clock_intervals(events) == ClockIntervals(((at(1), at(2)), (at(3), None)), (), at(3))


def test_a_second_pause_while_paused_keeps_the_first_start():
    events = [("paused", at(1), None), ("paused", at(2), {"reason": "rules"}), ("resumed", at(4), None)]
    assert clock_intervals(events).status_pauses == ((at(1), at(4)),)


def test_a_second_resolution_while_resolved_keeps_the_first_stop_start():
    events = [("resolved", at(1), None), ("resolved", at(2), None), ("resumed", at(3), {"reason": "reopened"})]
    assert clock_intervals(events).resolution_stops == ((at(1), at(3)),)


@PROPS
@given(events=histories())
def test_each_interval_runs_from_the_first_start_after_the_last_end_to_the_next_end(events):
    """Read in history order: a repeated "paused" or "resolved" while one is open never moves its
    start, and an end event with nothing open ends nothing."""
    result = clock_intervals(events)
    for intervals, is_start, is_end in ((result.status_pauses, lambda e: e.kind == "paused", is_plain_resume),
                                        (result.resolution_stops, lambda e: e.kind == "resolved", is_reopen)):
        expected, cursor = [], 0
        while True:
            starts = [i for i in range(cursor, len(events)) if is_start(events[i])]
            if not starts:
                break
            ends = [i for i in range(starts[0] + 1, len(events)) if is_end(events[i])]
            expected.append((events[starts[0]].at, events[ends[0]].at if ends else None))
            if not ends:
                break
            cursor = ends[0] + 1
        if is_end is is_reopen:
            expected = [iv for iv in expected if iv[1] is not None]   # a request still resolved is done
        assert list(intervals) == expected


def test_a_resume_without_a_pause_is_ignored():
    assert clock_intervals([("resumed", at(1), None), ("paused", at(2), None)]).status_pauses == ((at(2), None),)


def test_a_reopen_ends_the_resolution_stop_but_not_the_status_pause():
    events = [("paused", at(1), None), ("resolved", at(2), None), ("resumed", at(3), {"reason": "reopened"})]
    result = clock_intervals(events)
    assert result.resolution_stops == ((at(2), at(3)),)
    assert result.status_pauses == ((at(1), None),)
    assert result.open_pause_since == at(1)


def test_a_request_still_resolved_has_no_stop_interval():
    assert clock_intervals([("resolved", at(2), None)]) == ClockIntervals((), (), None)


def test_no_events_no_intervals():
    assert clock_intervals([]) == ClockIntervals((), (), None)


# ---------------------------------------------------------------- met, late, breached

instants = st.datetimes(datetime(2024, 1, 1), datetime(2025, 12, 31), timezones=st.just(UTC))
maybe_instants = st.one_of(st.none(), instants)


@PROPS
@given(done=instants, due=instants)
def test_a_target_done_by_its_due_and_never_breached_is_met_otherwise_it_needs_a_breach(done, due):
    decision = settle_met(True, done, None, due)
    assert decision.sla_met is (done <= due)
    assert decision.record_breach is (done > due)


@PROPS
@given(done=instants, breached=instants, due=maybe_instants)
def test_a_target_already_breached_is_missed_and_not_breached_again(done, breached, due):
    assert settle_met(True, done, breached, due) == MetDecision(False, False)


@PROPS
@given(breached=maybe_instants, due=maybe_instants)
def test_an_undone_target_is_undecided_until_it_breaches(breached, due):
    assert settle_met(True, None, breached, due) == MetDecision(None if breached is None else False, False)


@PROPS
@given(done=maybe_instants, breached=maybe_instants, due=maybe_instants)
def test_a_clock_without_the_target_decides_nothing(done, breached, due):
    assert settle_met(False, done, breached, due) == MetDecision(None, False)


@PROPS
@given(done=instants)
def test_a_target_done_while_it_had_no_due_time_is_met(done):
    assert settle_met(True, done, None, None) == MetDecision(True, False)


def test_done_exactly_at_the_due_time_is_on_time_and_a_microsecond_late_is_not():
    assert settle_met(True, at(4), None, at(4)) == MetDecision(True, False)
    assert settle_met(True, at(4) + timedelta(microseconds=1), None, at(4)) == MetDecision(False, True)


@pytest.mark.parametrize(("response", "resolution", "expected"), [
    (False, False, None),
    (True, False, "response"),
    (False, True, "resolution"),
    (True, True, "both"),
])
def test_breach_type(response, resolution, expected):
    assert breach_type(response, resolution) == expected


def test_hours_overdue():
    assert hours_overdue(at(0), at(1.5)) == 1.5
    assert hours_overdue(at(0), at(0) + timedelta(seconds=20)) == 0.01   # rounded to two decimals
    assert hours_overdue(at(2), at(1)) == -1.0
    assert hours_overdue(None, at(1)) == 0.0


# ---------------------------------------------------------------- at risk

def test_a_stopped_clock_has_no_warning_point():
    assert warn_point(None, at(3)) is None
    assert warn_point(at(4), at(3)) == at(3)


@pytest.mark.parametrize(("at_risk_at", "breached_at", "warn", "cleared"), [
    (at(1), None, at(3), True),     # a pause or a longer target moved the warning point past now
    (at(1), None, None, True),      # the clock stopped (paused or exempt)
    (at(1), None, at(2), False),    # the warning point is now: still at risk
    (at(1), None, at(1), False),    # already passed: still at risk
    (at(1), at(2), at(3), False),   # breached: its history is settled
    (None, None, at(3), False),     # nothing to clear
], ids=["warn-moved-later", "stopped", "warn-now", "warn-passed", "breached", "not-flagged"])
def test_when_an_at_risk_flag_is_cleared(at_risk_at, breached_at, warn, cleared):
    assert clears_at_risk(at_risk_at, breached_at, warn, now=at(2)) is cleared


@PROPS
@given(at_risk_at=maybe_instants, breached_at=maybe_instants, warn=maybe_instants, now=instants)
def test_only_a_flag_on_an_unbreached_target_whose_warning_is_not_past_is_cleared(at_risk_at, breached_at, warn, now):
    cleared = clears_at_risk(at_risk_at, breached_at, warn, now)
    if cleared:
        assert at_risk_at is not None and breached_at is None
        assert warn is None or warn > now
    elif at_risk_at is not None and breached_at is None:
        assert warn is not None and warn <= now


# ---------------------------------------------------------------- target states

NOW = at(5)


def clock(**facts) -> TargetClock:
    """A running response target (4 h, due in an hour, warning passed never) with some facts changed."""
    values = {"target": "response", "hours": 4.0, "due_at": at(6), "warn_at": at(5.5), "done_at": None,
              "breached_at": None, "at_risk_at": None, "sla_met": None}
    values.update(facts)
    return TargetClock(**values)


target_clocks = st.builds(
    TargetClock, target=st.sampled_from(["response", "resolution"]), hours=st.floats(0.01, 8760),
    due_at=maybe_instants, warn_at=maybe_instants, done_at=maybe_instants, breached_at=maybe_instants,
    at_risk_at=maybe_instants, sla_met=st.one_of(st.none(), st.booleans()))


@PROPS
@given(c=target_clocks, paused=st.booleans(), exempt=st.booleans(), now=instants, show=st.booleans())
def test_a_done_target_is_met_or_missed_whatever_else_holds(c, paused, exempt, now, show):
    state = target_state(c, paused, exempt, now, show)
    if c.done_at is not None:
        assert state.state == ("missed" if c.breached_at is not None or c.sla_met is False else "met")
        assert state.seconds_left is None
    else:
        assert state.state not in ("met", "missed")


@PROPS
@given(c=target_clocks, paused=st.booleans(), exempt=st.booleans(), now=instants, show=st.booleans())
def test_breached_wins_over_exempt_paused_and_at_risk(c, paused, exempt, now, show):
    state = target_state(c, paused, exempt, now, show).state
    assert (state == "breached") == (c.done_at is None and c.breached_at is not None)


@PROPS
@given(c=target_clocks, paused=st.booleans(), now=instants, show=st.booleans())
def test_an_exempt_running_target_reads_exempt_to_staff_and_paused_to_others(c, paused, now, show):
    state = target_state(c, paused, True, now, show).state
    if c.done_at is None and c.breached_at is None:
        assert state == ("exempt" if show else "paused")


@PROPS
@given(c=target_clocks, paused=st.booleans(), exempt=st.booleans(), now=instants)
def test_hiding_exemptions_only_ever_turns_exempt_into_paused(c, paused, exempt, now):
    shown = target_state(c, paused, exempt, now, True)
    hidden = target_state(c, paused, exempt, now, False)
    assert hidden.state != "exempt"
    assert hidden.state == ("paused" if shown.state == "exempt" else shown.state)
    assert (hidden.due_at, hidden.seconds_left) == (shown.due_at, shown.seconds_left)


@PROPS
@given(c=target_clocks, now=instants, show=st.booleans())
def test_a_paused_clock_reads_paused_unless_done_breached_or_exempt(c, now, show):
    state = target_state(c, True, False, now, show).state
    if c.done_at is None and c.breached_at is None:
        assert state == "paused"


@PROPS
@given(c=target_clocks, now=instants, show=st.booleans())
def test_a_running_target_is_at_risk_once_flagged_or_past_its_warning_point(c, now, show):
    state = target_state(c, False, False, now, show)
    assert state.state in TARGET_STATES
    if c.done_at is None and c.breached_at is None:
        at_risk = c.at_risk_at is not None or (c.warn_at is not None and c.warn_at <= now)
        assert state.state == ("at_risk" if at_risk else "running")


@PROPS
@given(c=target_clocks, paused=st.booleans(), exempt=st.booleans(), now=instants, show=st.booleans())
def test_seconds_left_count_down_to_the_due_time_of_an_undone_target(c, paused, exempt, now, show):
    state = target_state(c, paused, exempt, now, show)
    if c.done_at is None and c.due_at is not None:
        assert state.seconds_left == (c.due_at - now).total_seconds()
    else:
        assert state.seconds_left is None
    assert (state.target, state.hours, state.due_at, state.done_at) == (c.target, c.hours, c.due_at, c.done_at)


@pytest.mark.parametrize(("facts", "paused", "exempt", "show", "expected"), [
    ({}, False, False, True, "running"),
    ({"warn_at": at(5)}, False, False, True, "at_risk"),                       # warning point is now
    ({"warn_at": at(6), "at_risk_at": at(4)}, False, False, True, "at_risk"),   # flagged earlier
    ({}, True, False, True, "paused"),
    ({"at_risk_at": at(4)}, True, False, True, "paused"),                      # a pause hides at risk
    ({}, True, True, True, "exempt"),                                          # exempt shown over paused
    ({}, False, True, False, "paused"),                                        # requesters see a stop
    ({"breached_at": at(4)}, True, True, True, "breached"),
    ({"done_at": at(4), "sla_met": True}, False, False, True, "met"),
    ({"done_at": at(4), "sla_met": False}, False, False, True, "missed"),      # met late
    ({"done_at": at(7), "breached_at": at(6), "sla_met": False}, True, True, True, "missed"),
], ids=["running", "warning-now", "flagged", "paused", "paused-over-at-risk", "exempt", "exempt-hidden",
        "breached", "met", "met-late", "breached-then-done"])
def test_target_state_examples(facts, paused, exempt, show, expected):
    assert target_state(clock(**facts), paused, exempt, NOW, show).state == expected


def test_target_states_reads_the_clock_pause_and_each_targets_own_exemption():
    response, resolution = clock(), clock(target="resolution", hours=8.0, due_at=at(10), warn_at=at(9))
    assert [s.state for s in target_states([response, resolution], None, {"resolution"}, NOW)] == \
        ["running", "exempt"]
    assert [s.state for s in target_states([response, resolution], at(4), set(), NOW)] == ["paused", "paused"]
    assert target_states([response], None, {"response"}, NOW, show_exempt=False) == [
        TargetState("response", 4.0, at(6), None, "paused", 3600.0)]
    assert target_states([], at(4), {"response"}, NOW) == []


# ---------------------------------------------------------------- calendar snapshots

ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@st.composite
def calendar_values(draw) -> dict:
    """Plain calendar values as an admin can store them (times on the minute)."""
    opens_min = draw(st.integers(0, 22 * 60))
    closes_min = opens_min + draw(st.integers(1, 24 * 60 - 1 - opens_min))
    return {
        "calendar_id": draw(st.integers(1, 10**6)),
        "timezone": draw(st.sampled_from(ZONES)),
        "working_days": draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True)),
        "opens": time(opens_min // 60, opens_min % 60),
        "closes": time(closes_min // 60, closes_min % 60),
        "holidays": draw(st.lists(st.dates(date(2020, 1, 1), date(2030, 12, 31)), max_size=10, unique=True)),
    }


@PROPS
@given(values=calendar_values())
def test_a_calendar_snapshot_round_trips_through_json_to_the_same_calendar(values):
    snapshot = calendar_snapshot(**values)
    stored = json.loads(json.dumps(snapshot))    # as the clock's JSON column keeps it
    assert stored == snapshot
    assert to_calendar(stored) == BusinessCalendar(
        timezone=values["timezone"], working_days=frozenset(values["working_days"]), opens=values["opens"],
        closes=values["closes"], holidays=frozenset(values["holidays"]))


@PROPS
@given(values=calendar_values(), data=st.data())
def test_a_snapshot_does_not_depend_on_the_order_of_days_and_holidays(values, data):
    shuffled = dict(values, working_days=data.draw(st.permutations(values["working_days"])),
                    holidays=data.draw(st.permutations(values["holidays"])))
    assert calendar_snapshot(**shuffled) == calendar_snapshot(**values)


def test_calendar_snapshot_format():
    snapshot = calendar_snapshot(7, "Europe/London", [4, 0, 2, 1, 3], time(9, 0), time(17, 30),
                                 [date(2024, 12, 25), date(2024, 8, 26)])
    assert snapshot == {"id": 7, "timezone": "Europe/London", "working_days": [0, 1, 2, 3, 4],
                        "opens": "09:00", "closes": "17:30", "holidays": ["2024-08-26", "2024-12-25"]}
    assert to_calendar(snapshot) == BusinessCalendar("Europe/London", frozenset(range(5)), time(9), time(17, 30),
                                                     frozenset({date(2024, 8, 26), date(2024, 12, 25)}))


def test_no_snapshot_is_a_24x7_clock():
    assert to_calendar(None) is None
