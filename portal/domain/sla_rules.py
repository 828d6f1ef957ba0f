"""SLA rules over a clock's recorded facts: pause intervals, met or late, breach type, at-risk, states.

Pure functions over plain values, like portal.domain.sla_clock (which does the business-time
arithmetic): no Flask, no database, no models. The SLA service reads its rows, hands the values
here, and writes the answers back; that is what lets these rules be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

from portal.domain import sla_clock
from portal.domain.sla_clock import Interval

# What a target's state can be, as the SLA panel, the request page and the API show it.
TARGET_STATES = ("met", "missed", "breached", "exempt", "paused", "at_risk", "running")
TARGETS_ORDER = ("response", "resolution")


# ---------------------------------------------------------------- pause and stop intervals

class ClockEvent(NamedTuple):
    """One entry of a clock's history, as far as the intervals care: what, when, and its detail.

    A NamedTuple so that plain `(kind, at, detail)` tuples are accepted just as well.
    """

    kind: str
    at: datetime
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ClockIntervals:
    """The intervals during which a clock does not count, derived from its history."""

    status_pauses: tuple[Interval, ...]      # paused .. resumed, in order; an open one last (end None)
    resolution_stops: tuple[Interval, ...]   # resolved .. reopened (closed ones only)
    open_pause_since: datetime | None        # start of the open pause, if the clock is paused now


def clock_intervals(events: Iterable[ClockEvent | tuple[str, datetime, Mapping[str, Any] | None]]) -> ClockIntervals:
    """Pause and resolution-stop intervals from a clock's events, given oldest first.

    A status pause runs from "paused" to the next plain "resumed". A resolved request stops the
    resolution clock until it is reopened ("resumed" with reason "reopened"); a stop that is still
    open is not an interval, because a resolved target is done and no longer counts at all. A
    repeated "paused" or "resolved" while one is already open changes nothing: the first one began it.
    """
    pauses: list[Interval] = []
    stops: list[Interval] = []
    pause_start: datetime | None = None
    stop_start: datetime | None = None
    for kind, at, detail in events:
        if kind == "paused" and pause_start is None:
            pause_start = at
        elif kind == "resolved" and stop_start is None:
            stop_start = at
        elif kind == "resumed":
            if (detail or {}).get("reason") == "reopened":
                if stop_start is not None:
                    stops.append((stop_start, at))
                    stop_start = None
            elif pause_start is not None:
                pauses.append((pause_start, at))
                pause_start = None
    if pause_start is not None:
        pauses.append((pause_start, None))
    return ClockIntervals(tuple(pauses), tuple(stops), pause_start)


# ---------------------------------------------------------------- at risk

def warn_point(due: datetime | None, warn: datetime | None) -> datetime | None:
    """The warning point to store with a due time: none while the clock is stopped (no due time)."""
    # A stopped clock (paused, exempt) is not at risk either.
    return None if due is None else warn


def clears_at_risk(at_risk_at: datetime | None, breached_at: datetime | None, warn: datetime | None,
                   now: datetime) -> bool:
    """Whether a recomputed target's at-risk flag must be cleared.

    "At risk" describes the clock as it is now: a pause, an exemption or a new target that moves the
    warning point into the future (or stops the clock) clears it. A breached target keeps its flag:
    its history is settled.
    """
    return at_risk_at is not None and breached_at is None and (warn is None or warn > now)


# ---------------------------------------------------------------- met, late and breached

@dataclass(frozen=True)
class MetDecision:
    """What a recompute settles for one target."""

    sla_met: bool | None    # True on time, False late or breached, None undecided (or no target)
    record_breach: bool     # the target was met late and no breach is recorded yet: record one now


def settle_met(has_target: bool, done_at: datetime | None, breached_at: datetime | None,
               due: datetime | None) -> MetDecision:
    """Met on time, met late, or not decided yet, for one target.

    A target done at or before its due time, and never breached, is met. Done after it (or after a
    breach) it is missed, and a late one that was not already breached is a breach to record now:
    the periodic check may not have run between the due time and the moment it was done. A target
    done while it has no due time (stopped by an exemption) is met. Undone, it is decided only once
    breached.
    """
    if not has_target:
        return MetDecision(None, False)
    if done_at is None:
        return MetDecision(False if breached_at is not None else None, False)
    on_time = breached_at is None and (due is None or done_at <= due)
    return MetDecision(on_time, not on_time and breached_at is None)


def breach_type(response_breached: bool, resolution_breached: bool) -> str | None:
    """The clock's breach type for the breach list: "both", "response", "resolution" or None."""
    if response_breached and resolution_breached:
        return "both"
    if response_breached:
        return "response"
    if resolution_breached:
        return "resolution"
    return None


def hours_overdue(due: datetime | None, at: datetime) -> float:
    """Hours from the due time to `at`, to two decimals, as breach records store them (0 without a due)."""
    return round((at - due).total_seconds() / 3600, 2) if due is not None else 0.0


# ---------------------------------------------------------------- states as people read them

@dataclass(frozen=True)
class TargetClock:
    """The stored facts of one target of a clock that its state is read from."""

    target: str                      # "response" or "resolution"
    hours: float
    due_at: datetime | None
    warn_at: datetime | None
    done_at: datetime | None         # responded or resolved
    breached_at: datetime | None
    at_risk_at: datetime | None
    sla_met: bool | None


@dataclass
class TargetState:
    """One target of a clock as a person reads it."""

    target: str                 # "response" or "resolution"
    hours: float
    due_at: datetime | None
    done_at: datetime | None
    state: str                  # met, missed, breached, paused, exempt, at_risk, running
    seconds_left: float | None  # negative when overdue
    # Staff only: what an exemption granted over a recorded breach did (see breach_exemption).
    exemption: BreachExemption | None = None


def target_state(clock: TargetClock, paused: bool, exempt: bool, now: datetime,
                 show_exempt: bool = True) -> TargetState:
    """The state of one target, first match wins: done (met or missed), breached, exempt, paused,
    at risk, running.

    `paused` says the whole clock is in a status pause; `exempt` that an active exemption covers
    this target. Exemptions are an internal matter: with `show_exempt` False an exempt target reads
    as paused. A target is at risk once flagged, or as soon as its warning point has passed (the
    periodic check may not have flagged it yet).
    """
    if clock.done_at is not None:
        state = "missed" if clock.breached_at is not None or clock.sla_met is False else "met"
    elif clock.breached_at is not None:
        state = "breached"
    elif exempt:
        state = "exempt" if show_exempt else "paused"
    elif paused:
        state = "paused"
    elif clock.at_risk_at is not None or (clock.warn_at is not None and clock.warn_at <= now):
        state = "at_risk"
    else:
        state = "running"
    left = (clock.due_at - now).total_seconds() if clock.due_at is not None and clock.done_at is None else None
    return TargetState(clock.target, clock.hours, clock.due_at, clock.done_at, state, left)


def target_states(targets: Iterable[TargetClock], paused_since: datetime | None, exempt_targets: Collection[str],
                  now: datetime, show_exempt: bool = True) -> list[TargetState]:
    """Each target's state (see target_state), given when the clock's open pause began (None when
    running) and the targets that an active exemption covers now."""
    return [target_state(t, paused_since is not None, t.target in exempt_targets, now, show_exempt)
            for t in targets]


def next_target(states: Sequence[TargetState]) -> TargetState | None:
    """The target a queue row shows: the first still running (response before resolution), else
    the last one (how the clock ended: met or missed); None without targets."""
    for state in states:
        if state.done_at is None:
            return state
    return states[-1] if states else None


# ---------------------------------------------------------------- exemptions over a recorded breach

class ExemptionSpan(NamedTuple):
    """An exemption as the breach note reads it."""

    covers: str              # "response", "resolution" or "both"
    start: datetime          # granted
    end: datetime | None     # revoked or expired, whichever is first; None while indefinite


def _day_span(start: datetime, end: datetime) -> str:
    """'3–5 Dec', '28 Nov–2 Dec', '5 Dec' (UTC days)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start.date() == end.date():
        return f"{end.day} {end:%b}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}\u2013{end.day} {end:%b}"
    return f"{start.day} {start:%b}\u2013{end.day} {end:%b}"


@dataclass(frozen=True)
class BreachExemption:
    """What exemptions did to recorded breaches: the breach stands (it is final), the note says so.

    `targets` are the breached targets the note speaks of, `whole` says they are all the breached
    ones. Active: exempt now, `until` the first moment one of them stops being exempt (None: no
    end). Ended: the last exemption that ended after the breach, from `since` to `until`.
    """

    targets: tuple[str, ...]
    whole: bool
    active: bool
    since: datetime
    until: datetime | None

    @property
    def label(self) -> str:
        """'exempt until 5 Dec 14:00 UTC', 'exempt, no end', 'was exempt 3–5 Dec'; prefixed with the
        target ('response exempt ...') when only some of the breached targets are covered."""
        if self.active:
            until = self.until.astimezone(UTC) if self.until is not None else None
            text = f"exempt until {until.day} {until:%b %H:%M} UTC" if until is not None else "exempt, no end"
        else:
            assert self.until is not None  # an ended exemption has an end
            text = f"was exempt {_day_span(self.since, self.until)}"
        return text if self.whole else f"{' and '.join(self.targets)} {text}"


def breach_exemption(breached: Mapping[str, datetime | None], spans: Iterable[ExemptionSpan],
                     now: datetime) -> BreachExemption | None:
    """The note for breached targets (`breached` maps a target to its breached_at, None if not breached).

    Exemptions active now over any breached target win: the note names those targets and when the
    first of them stops being exempt (a target covered by several is exempt until the last of them
    ends). Otherwise the exemption that ended last, after the breach it covers (an exemption that
    ended before the breach did not touch it). None without a breach or without such an exemption.
    """
    breached_targets = tuple(t for t in TARGETS_ORDER if breached.get(t) is not None)
    if not breached_targets:
        return None
    spans = [s for s in spans if s.start <= now]
    active_until: dict[str, datetime | None] = {}
    active_since: list[datetime] = []
    for target in breached_targets:
        covering = [s for s in spans if s.covers in (target, "both") and (s.end is None or s.end > now)]
        if covering:
            ends = [s.end for s in covering]
            active_until[target] = None if None in ends else max(e for e in ends if e is not None)
            active_since.extend(s.start for s in covering)
    if active_until:
        ends = [e for e in active_until.values() if e is not None]
        return BreachExemption(tuple(active_until), len(active_until) == len(breached_targets), True,
                               min(active_since), min(ends) if ends else None)
    ended = [(s, t) for s in spans for t in breached_targets
             if s.covers in (t, "both") and s.end is not None and s.end > breached[t]]
    if not ended:
        return None
    last = max((s for s, _ in ended), key=lambda s: (s.end, s.start))
    targets = tuple(t for t in breached_targets if (last, t) in ended)
    return BreachExemption(targets, len(targets) == len(breached_targets), False, last.start, last.end)


def exempt_breach(breached: Mapping[str, datetime | None], spans: Iterable[ExemptionSpan], now: datetime) -> bool:
    """Whether every breached target is exempt now: what the breach page's "hide exempt" drops."""
    note = breach_exemption(breached, spans, now)
    return note is not None and note.active and note.whole


# ---------------------------------------------------------------- calendar snapshots

def calendar_snapshot(calendar_id: int, timezone: str, working_days: Iterable[int], opens: time, closes: time,
                      holidays: Iterable[date]) -> dict[str, Any]:
    """A calendar's rules as plain JSON, copied onto each clock that uses it.

    Times keep hours and minutes (calendars open on the minute); lists are sorted so that equal
    calendars give equal snapshots.
    """
    return {"id": calendar_id, "timezone": timezone, "working_days": sorted(working_days),
            "opens": opens.isoformat(timespec="minutes"), "closes": closes.isoformat(timespec="minutes"),
            "holidays": sorted(d.isoformat() for d in holidays)}


def to_calendar(snapshot: Mapping[str, Any] | None) -> sla_clock.BusinessCalendar | None:
    """The pure calendar for a snapshot; None (24x7) when there is none."""
    if snapshot is None:
        return None
    return sla_clock.BusinessCalendar(
        timezone=snapshot["timezone"],
        working_days=frozenset(snapshot["working_days"]),
        opens=time.fromisoformat(snapshot["opens"]),
        closes=time.fromisoformat(snapshot["closes"]),
        holidays=frozenset(date.fromisoformat(d) for d in snapshot["holidays"]),
    )
