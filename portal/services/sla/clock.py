"""The SLA clock of a request: start it, keep it in line with the request, and recompute it.

The clock of a request is its `sla_metric` row; what happened to it is in `sla_event`
(append-only). `recompute()` derives every due time from the definition's targets copied at
start, the calendar, and the pause and exemption intervals, using the pure functions in
portal.domain.sla_clock (business time) and portal.domain.sla_rules (intervals, met, at risk).
This module reads and writes the rows; the rules themselves live in the domain.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from portal.domain import sla_clock, sla_rules
from portal.domain.sla_rules import to_calendar
from portal.domain.workflow import OPEN_STATUSES
from portal.extensions import db
from portal.models import (
    BusinessCalendarRecord,
    ServiceRequest,
    SlaDefinition,
    SlaEvent,
    SlaExemption,
    SlaMetric,
    User,
)
from portal.services import audit

# service_request.due_sort for every clock afresh (bench/seed.py, after a bulk load with the
# sla_metric triggers off); the trigger of migration 0020 keeps it from then on.
REFILL_DUE_SORT = """
UPDATE service_request sr
   SET due_sort = coalesce(LEAST(CASE WHEN m.responded_at IS NULL THEN m.response_due_at END,
                                 CASE WHEN m.resolved_at IS NULL THEN m.resolution_due_at END),
                           '9999-12-31 00:00:00+00'::timestamptz)
  FROM sla_metric m
 WHERE m.request_id = sr.id
"""

# ---------------------------------------------------------------- calendars and definitions

def calendar_snapshot(record: BusinessCalendarRecord | None) -> dict | None:
    """A calendar's rules as plain JSON, copied onto each clock that uses it (None for none)."""
    if record is None:
        return None
    return sla_rules.calendar_snapshot(record.id, record.timezone, record.working_days, record.opens,
                                       record.closes, (h.day for h in record.holidays))


def find_definition(category: str, priority: str) -> SlaDefinition | None:
    """The active definition for this (category, priority), if any."""
    return db.session.scalar(select(SlaDefinition).where(
        SlaDefinition.category == category, SlaDefinition.priority == priority, SlaDefinition.is_active.is_(True)))


def copy_targets(metric: SlaMetric, definition: SlaDefinition | None) -> None:
    """Copy a definition's targets, calendar and pause rules onto the clock (or clear them for none).

    Clocks keep copies so that later edits to a definition reach open clocks only when applied.
    """
    metric.definition_id = definition.id if definition else None
    metric.calendar_id = definition.calendar_id if definition else None
    metric.calendar = calendar_snapshot(definition.calendar) if definition else None
    metric.response_target_hours = definition.response_time_hours if definition else None
    metric.resolution_target_hours = definition.resolution_time_hours if definition else None
    metric.at_risk_percent = definition.at_risk_percent if definition else 75
    metric.pause_statuses = list(definition.pause_statuses) if definition else []


# ---------------------------------------------------------------- events

def record_event(request_id: int, kind: str, at: datetime, target: str | None = None,
                 actor: User | None = None, detail: dict | None = None) -> SlaEvent:
    """Append one event to the request's SLA history (in the caller's transaction)."""
    event = SlaEvent(request_id=request_id, kind=kind, target=target, at=at,
                     actor_id=actor.id if actor else None, detail=detail)
    db.session.add(event)
    return event


def _events(request_id: int) -> list[sla_rules.ClockEvent]:
    """The request's SLA history, oldest first, as the plain events the interval rules read."""
    db.session.flush()  # events added in this transaction count too
    rows = db.session.scalars(
        select(SlaEvent).where(SlaEvent.request_id == request_id).order_by(SlaEvent.at, SlaEvent.id))
    return [sla_rules.ClockEvent(e.kind, e.at, e.detail) for e in rows]


# ---------------------------------------------------------------- the clock

def start_clock(req: ServiceRequest, now: datetime, actor: User | None = None) -> SlaMetric:
    """Create the request's metric against the matching definition (or none) and compute it."""
    definition = find_definition(req.category, req.priority)
    metric = SlaMetric(request_id=req.id, started_at=req.created_at, status=req.status, created_at=req.created_at,
                       updated_at=now)
    copy_targets(metric, definition)
    db.session.add(metric)
    record_event(req.id, "started", req.created_at, actor=actor,
                 detail={"definition_id": metric.definition_id,
                         "response_hours": as_float(metric.response_target_hours),
                         "resolution_hours": as_float(metric.resolution_target_hours)})
    align_pause(metric, [], req.created_at)  # a definition may pause in the status a request starts in
    recompute(metric, now)
    return metric


def align_pause(metric: SlaMetric, old_pause_statuses: list[str], at: datetime) -> None:
    """Record a pause or resume when the set of pause statuses changed under the current status."""
    was, now_paused = metric.status in old_pause_statuses, metric.status in metric.pause_statuses
    if now_paused and not was:
        record_event(metric.request_id, "paused", at, detail={"status": metric.status, "reason": "rules"})
    elif was and not now_paused:
        record_event(metric.request_id, "resumed", at, detail={"status": metric.status, "reason": "rules"})


def as_float(value: Decimal | None) -> float | None:
    """A stored number of hours as a float (None stays None)."""
    return float(value) if value is not None else None


def _exemption_intervals(request_id: int, target: str) -> list[sla_clock.Interval]:
    """The intervals during which an exemption (granted, maybe ended) stops this target's clock."""
    rows = db.session.scalars(select(SlaExemption).where(SlaExemption.request_id == request_id))
    return [(x.granted_at, x.end()) for x in rows if x.covers(target)]


def recompute(metric: SlaMetric, now: datetime) -> None:
    """Derive due, warn, paused and met values from targets, calendar, events and exemptions."""
    calendar = to_calendar(metric.calendar)
    intervals = sla_rules.clock_intervals(_events(metric.request_id))
    metric.paused_since = intervals.open_pause_since
    metric.paused_seconds = int(sum(
        (sla_clock.business_time_between(s, e or now, calendar) for s, e in intervals.status_pauses),
        timedelta(0)).total_seconds())
    for target, hours in (("response", metric.response_target_hours), ("resolution", metric.resolution_target_hours)):
        if hours is None:
            _set(metric, target, due=None, warn=None, now=now)
            continue
        pauses = list(intervals.status_pauses) + _exemption_intervals(metric.request_id, target)
        if target == "resolution":
            pauses += intervals.resolution_stops
        window = sla_clock.hours(hours)
        due = sla_clock.due_time(metric.started_at, window, calendar, pauses).at
        warn = sla_clock.due_time(metric.started_at, window * metric.at_risk_percent / 100, calendar, pauses).at
        _set(metric, target, due=due, warn=warn, now=now)
    _settle_met(metric, now)
    metric.updated_at = now


def _set(metric: SlaMetric, target: str, due: datetime | None, warn: datetime | None, now: datetime) -> None:
    """Store a target's new due and warning points, and clear an at-risk flag they no longer support.

    The at_risk event stays in the history, and its unique index keeps a later re-flag from
    notifying twice.
    """
    warn = sla_rules.warn_point(due, warn)
    setattr(metric, f"{target}_due_at", due)
    setattr(metric, f"{target}_warn_at", warn)
    if sla_rules.clears_at_risk(getattr(metric, f"{target}_at_risk_at"), getattr(metric, f"{target}_breached_at"),
                                warn, now):
        setattr(metric, f"{target}_at_risk_at", None)


def _settle_met(metric: SlaMetric, now: datetime) -> None:
    """A met target is met on time or late; a late one is a breach, recorded once."""
    for target, done_at in (("response", metric.responded_at), ("resolution", metric.resolved_at)):
        due = getattr(metric, f"{target}_due_at")
        decision = sla_rules.settle_met(getattr(metric, f"{target}_target_hours") is not None, done_at,
                                        getattr(metric, f"{target}_breached_at"), due)
        setattr(metric, f"{target}_sla_met", decision.sla_met)
        if decision.record_breach:
            _mark_breached(metric, target, now, due, done_at)
    _refresh_breach_flags(metric)


def _mark_breached(metric: SlaMetric, target: str, now: datetime, due: datetime | None, until: datetime) -> None:
    """Record a target's breach on the clock and, once, in its history."""
    setattr(metric, f"{target}_breached_at", now)
    # Insert-if-absent: the periodic check may record the same breach at the same moment.
    db.session.execute(
        pg_insert(SlaEvent).values(request_id=metric.request_id, kind="breached", target=target, at=now,
                                   detail={"due_at": due.isoformat() if due else None,
                                           "hours_overdue": sla_rules.hours_overdue(due, until)})
        .on_conflict_do_nothing(index_elements=["request_id", "kind", "target"],
                                index_where=text("kind IN ('breached', 'at_risk')")))


def _refresh_breach_flags(metric: SlaMetric) -> None:
    """The clock-wide breach flag and type, from its targets' breach times."""
    response, resolution = metric.response_breached_at is not None, metric.resolution_breached_at is not None
    metric.is_breached = response or resolution
    metric.breach_type = sla_rules.breach_type(response, resolution)


def get_metric(request_id: int, for_update: bool = False) -> SlaMetric | None:
    """The request's SLA metric row; `for_update` locks it until the transaction ends, so two
    changes to one request (or a change and the periodic check) cannot overwrite each other."""
    stmt = select(SlaMetric).where(SlaMetric.request_id == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


# ---------------------------------------------------------------- following the request

CLOCK_FIELDS = ("status", "category", "priority", "first_response_at", "resolved_at")


def clock_snapshot(req: ServiceRequest) -> dict[str, Any]:
    """What sync() compares before and after a change."""
    return {f: getattr(req, f) for f in CLOCK_FIELDS}


def sync(req: ServiceRequest, before: dict[str, Any], actor: User | None, now: datetime) -> None:
    """Bring the clock in line after a change to the request (same transaction as the change)."""
    metric = get_metric(req.id, for_update=True)
    if metric is None:
        return
    old_status, new_status = before["status"], req.status
    if (before["category"], before["priority"]) != (req.category, req.priority):
        _reclassify(req, metric, before, actor, now)
    responded = req.first_response_at or req.resolved_at
    if metric.responded_at is None and responded is not None:
        metric.responded_at = responded
        record_event(req.id, "responded", responded, "response", actor)
    if old_status != new_status:
        pause = set(metric.pause_statuses)
        if old_status in pause and new_status not in pause:
            record_event(req.id, "resumed", now, actor=actor, detail={"from": old_status, "to": new_status})
        if new_status in pause and old_status not in pause:
            record_event(req.id, "paused", now, actor=actor, detail={"status": new_status})
        if req.resolved_at is not None and before["resolved_at"] is None:
            record_event(req.id, "resolved", req.resolved_at, "resolution", actor)
        if old_status in ("resolved", "closed") and new_status in OPEN_STATUSES:
            record_event(req.id, "resumed", now, actor=actor, detail={"reason": "reopened", "to": new_status})
    metric.resolved_at = req.resolved_at
    metric.status = req.status
    recompute(metric, now)


def _reclassify(req: ServiceRequest, metric: SlaMetric, before: dict, actor: User | None, now: datetime) -> None:
    """New category or priority: the clock restarts against the new definition from the original start."""
    definition = find_definition(req.category, req.priority)
    old = {"definition_id": metric.definition_id, "response_hours": as_float(metric.response_target_hours),
           "resolution_hours": as_float(metric.resolution_target_hours)}
    old_pause = list(metric.pause_statuses)
    copy_targets(metric, definition)
    align_pause(metric, old_pause, now)
    new = {"definition_id": metric.definition_id, "response_hours": as_float(metric.response_target_hours),
           "resolution_hours": as_float(metric.resolution_target_hours)}
    record_event(req.id, "recalculated", now, actor=actor, detail={
        "reason": "reclassified", "from": {"category": before["category"], "priority": before["priority"], **old},
        "to": {"category": req.category, "priority": req.priority, **new}})
    audit.record(actor, "sla.recalculated", "service_request", req.id, old, new)

