"""SLA operations: start and keep each request's clock, exemptions, breach and at-risk checks.

The clock of a request is its `sla_metric` row; what happened to it is in `sla_event`
(append-only). `recompute()` derives every due time from the definition's targets copied at
start, the calendar, and the pause and exemption intervals, using the pure functions in
portal.domain.sla_clock. The periodic checks are set-based SQL over indexed due times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import joinedload

from portal import policy
from portal.domain import sla_clock
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
from portal.models._time import utcnow
from portal.models.sla import EXEMPTION_TYPES, TARGETS
from portal.services import audit
from portal.services.errors import Conflict, NotFound, ValidationFailed
from portal.services.text import clean_text
from portal.services.uow import unit_of_work

REASON_MAX = 2000
DURATION_MAX_HOURS = 24 * 365


# ---------------------------------------------------------------- calendars and definitions

def calendar_snapshot(record: BusinessCalendarRecord | None) -> dict | None:
    """A calendar's rules as plain JSON, copied onto each clock that uses it."""
    if record is None:
        return None
    return {"id": record.id, "timezone": record.timezone, "working_days": sorted(record.working_days),
            "opens": record.opens.isoformat(timespec="minutes"), "closes": record.closes.isoformat(timespec="minutes"),
            "holidays": sorted(h.day.isoformat() for h in record.holidays)}


def to_calendar(snapshot: dict | None) -> sla_clock.BusinessCalendar | None:
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


def find_definition(category: str, priority: str) -> SlaDefinition | None:
    """The active definition for this (category, priority), if any."""
    return db.session.scalar(select(SlaDefinition).where(
        SlaDefinition.category == category, SlaDefinition.priority == priority, SlaDefinition.is_active.is_(True)))


def copy_targets(metric: SlaMetric, definition: SlaDefinition | None) -> None:
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


def _events(request_id: int) -> list[SlaEvent]:
    db.session.flush()
    return list(db.session.scalars(
        select(SlaEvent).where(SlaEvent.request_id == request_id).order_by(SlaEvent.at, SlaEvent.id)))


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


@dataclass
class _Intervals:
    status_pauses: list[sla_clock.Interval]
    resolution_stops: list[sla_clock.Interval]   # resolved .. reopened (closed ones only)
    open_pause_since: datetime | None


def _intervals(events: list[SlaEvent]) -> _Intervals:
    pauses: list[sla_clock.Interval] = []
    stops: list[sla_clock.Interval] = []
    pause_start: datetime | None = None
    stop_start: datetime | None = None
    for e in events:
        if e.kind == "paused" and pause_start is None:
            pause_start = e.at
        elif e.kind == "resolved" and stop_start is None:
            stop_start = e.at
        elif e.kind == "resumed":
            if (e.detail or {}).get("reason") == "reopened":
                if stop_start is not None:
                    stops.append((stop_start, e.at))
                    stop_start = None
            elif pause_start is not None:
                pauses.append((pause_start, e.at))
                pause_start = None
    if pause_start is not None:
        pauses.append((pause_start, None))
    return _Intervals(pauses, stops, pause_start)


def _exemption_intervals(request_id: int, target: str) -> list[sla_clock.Interval]:
    rows = db.session.scalars(select(SlaExemption).where(SlaExemption.request_id == request_id))
    return [(x.granted_at, x.end()) for x in rows if x.covers(target)]


def recompute(metric: SlaMetric, now: datetime) -> None:
    """Derive due, warn, paused and met values from targets, calendar, events and exemptions."""
    calendar = to_calendar(metric.calendar)
    intervals = _intervals(_events(metric.request_id))
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
    if due is None:
        warn = None  # a stopped clock (paused, exempt) is not at risk either
    setattr(metric, f"{target}_due_at", due)
    setattr(metric, f"{target}_warn_at", warn)
    # "At risk" describes the clock as it is now: a pause, an exemption or a new target that moves the
    # warning point into the future (or stops the clock) clears it. The at_risk event stays in the
    # history, and its unique index keeps a later re-flag from notifying twice.
    at_risk_at = getattr(metric, f"{target}_at_risk_at")
    if at_risk_at is not None and getattr(metric, f"{target}_breached_at") is None and (warn is None or warn > now):
        setattr(metric, f"{target}_at_risk_at", None)


def _settle_met(metric: SlaMetric, now: datetime) -> None:
    """A met target is met on time or late; a late one is a breach, recorded once."""
    for target, done_at in (("response", metric.responded_at), ("resolution", metric.resolved_at)):
        if getattr(metric, f"{target}_target_hours") is None:
            setattr(metric, f"{target}_sla_met", None)
            continue
        breached_at = getattr(metric, f"{target}_breached_at")
        if done_at is None:
            setattr(metric, f"{target}_sla_met", False if breached_at else None)
            continue
        due = getattr(metric, f"{target}_due_at")
        on_time = breached_at is None and (due is None or done_at <= due)
        setattr(metric, f"{target}_sla_met", on_time)
        if not on_time and breached_at is None:
            _mark_breached(metric, target, now, due, done_at)
    _refresh_breach_flags(metric)


def _mark_breached(metric: SlaMetric, target: str, now: datetime, due: datetime | None, until: datetime) -> None:
    setattr(metric, f"{target}_breached_at", now)
    overdue = round((until - due).total_seconds() / 3600, 2) if due else 0.0
    # Insert-if-absent: the periodic check may record the same breach at the same moment.
    db.session.execute(
        pg_insert(SlaEvent).values(request_id=metric.request_id, kind="breached", target=target, at=now,
                                   detail={"due_at": due.isoformat() if due else None, "hours_overdue": overdue})
        .on_conflict_do_nothing(index_elements=["request_id", "kind", "target"],
                                index_where=text("kind IN ('breached', 'at_risk')")))


def _refresh_breach_flags(metric: SlaMetric) -> None:
    response, resolution = metric.response_breached_at is not None, metric.resolution_breached_at is not None
    metric.is_breached = response or resolution
    metric.breach_type = "both" if response and resolution else "response" if response else (
        "resolution" if resolution else None)


def get_metric(request_id: int, for_update: bool = False) -> SlaMetric | None:
    """The request's SLA metric row; `for_update` locks it until the transaction ends, so two
    changes to one request (or a change and the periodic check) cannot overwrite each other."""
    stmt = select(SlaMetric).where(SlaMetric.request_id == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


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


# ---------------------------------------------------------------- exemptions

def _parse_duration(duration_hours: Any) -> Decimal | None:
    if duration_hours in (None, ""):
        return None
    try:
        value = Decimal(str(duration_hours))
    except ArithmeticError as exc:
        raise ValidationFailed({"duration_hours": "Enter a number of hours, or leave empty for indefinite."}) from exc
    if isinstance(duration_hours, bool) or not value.is_finite() or value < Decimal("0.01") \
            or value > DURATION_MAX_HOURS:
        raise ValidationFailed({"duration_hours": f"Use from 0.01 to {DURATION_MAX_HOURS} hours."})
    if value != value.quantize(Decimal("0.01")):
        raise ValidationFailed({"duration_hours": "Use at most two decimal places."})
    return value.quantize(Decimal("0.01"))


def _lock_clock(actor: User, request_id: int) -> SlaMetric:
    """Lock the request row, then its clock (always in this order), for an exemption change."""
    from portal.services.requests.commands import lock_request  # requests import this module

    lock_request(actor, request_id)
    metric = get_metric(request_id, for_update=True)
    if metric is None or metric.definition_id is None:
        raise Conflict("This request has no SLA, so there is nothing to exempt.")
    return metric


def _check_exemption(reason: Any, exemption_type: Any, duration_hours: Any) -> tuple[str, Decimal | None]:
    errors: dict[str, str] = {}
    reason = clean_text(errors, "reason", reason, REASON_MAX, missing="Say why the exemption is needed.")
    if exemption_type not in EXEMPTION_TYPES:
        errors["exemption_type"] = f"Choose one of: {', '.join(EXEMPTION_TYPES)}."
    try:
        duration = _parse_duration(duration_hours)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        duration = None
    if errors:
        raise ValidationFailed(errors)
    return reason, duration


def grant_exemption(actor: User, request_id: int, reason: str, exemption_type: str, duration_hours: Any,
                    now: datetime | None = None) -> SlaExemption:
    """Exempt a target (or both) of a request from breaching, for some hours or until revoked."""
    policy.require(actor, "sla.exempt")
    reason, duration = _check_exemption(reason, exemption_type, duration_hours)
    with unit_of_work():
        now = now or utcnow()
        metric = _lock_clock(actor, request_id)
        exemption = SlaExemption(
            request_id=request_id, exemption_type=exemption_type, reason=reason, duration_hours=duration,
            granted_by_id=actor.id, granted_at=now,
            expires_at=now + timedelta(hours=float(duration)) if duration is not None else None,
        )
        db.session.add(exemption)
        db.session.flush()
        for target in _targets_of(exemption_type):
            record_event(request_id, "exempted", now, target, actor, {
                "exemption_id": exemption.id, "reason": reason, "duration_hours": as_float(duration)})
        audit.record(actor, "sla.exemption_granted", "service_request", request_id, None, {
            "exemption_id": exemption.id, "type": exemption_type, "duration_hours": as_float(duration),
            "reason": reason})
        recompute(metric, now)
    return exemption


def revoke_exemption(actor: User, request_id: int, exemption_id: int, now: datetime | None = None) -> SlaExemption:
    """End an exemption of this request now; the clock counts again from this moment.

    The exemption is read after the request is locked, so of two revokes at once the second
    sees the first one's end and is refused.
    """
    policy.require(actor, "sla.exempt")
    with unit_of_work():
        now = now or utcnow()
        metric = _lock_clock(actor, request_id)
        exemption = db.session.scalar(
            select(SlaExemption).where(SlaExemption.id == exemption_id, SlaExemption.request_id == request_id)
            .execution_options(populate_existing=True))
        if exemption is None:
            raise NotFound("No such exemption on this request.")
        if not exemption.is_active(now):
            raise Conflict("This exemption has already ended.")
        exemption.revoked_at = now
        exemption.revoked_by_id = actor.id
        for target in _targets_of(exemption.exemption_type):
            record_event(request_id, "exemption_revoked", now, target, actor, {"exemption_id": exemption.id})
        audit.record(actor, "sla.exemption_revoked", "service_request", request_id, None,
                     {"exemption_id": exemption.id})
        recompute(metric, now)
    return exemption


def _targets_of(exemption_type: str) -> tuple[str, ...]:
    return TARGETS if exemption_type == "both" else (exemption_type,)


def list_exemptions(request_id: int) -> list[SlaExemption]:
    """All exemptions of a request, newest first, with who granted and revoked them."""
    return list(db.session.scalars(
        select(SlaExemption).where(SlaExemption.request_id == request_id)
        .options(joinedload(SlaExemption.granted_by), joinedload(SlaExemption.revoked_by))
        .order_by(SlaExemption.granted_at.desc(), SlaExemption.id.desc())))


# ---------------------------------------------------------------- periodic checks (set-based)

_BREACH_SQL = """
WITH hit AS (
    UPDATE sla_metric m
       SET {t}_breached_at = :now,
           {t}_sla_met = false,
           is_breached = true,
           breach_type = CASE WHEN m.{other}_breached_at IS NULL THEN '{t}' ELSE 'both' END,
           updated_at = :now
     WHERE m.{t}_due_at <= :now
       AND m.{done} IS NULL
       AND m.{t}_breached_at IS NULL
 RETURNING m.request_id, m.{t}_due_at AS due_at
), ev AS (
    INSERT INTO sla_event (request_id, kind, target, at, detail)
    SELECT request_id, 'breached', '{t}', :now,
           jsonb_build_object('due_at', due_at,
                              'hours_overdue', round((extract(epoch FROM (:now - due_at)) / 3600)::numeric, 2))
      FROM hit
    ON CONFLICT (request_id, kind, target) WHERE kind IN ('breached', 'at_risk') DO NOTHING
)
SELECT request_id, due_at FROM hit
"""

_AT_RISK_SQL = """
WITH hit AS (
    UPDATE sla_metric m
       SET {t}_at_risk_at = :now, updated_at = :now
     WHERE m.{t}_warn_at <= :now
       AND m.{done} IS NULL
       AND m.{t}_at_risk_at IS NULL
       AND m.{t}_breached_at IS NULL
 RETURNING m.request_id, m.{t}_due_at AS due_at
), ev AS (
    INSERT INTO sla_event (request_id, kind, target, at, detail)
    SELECT request_id, 'at_risk', '{t}', :now, jsonb_build_object('due_at', due_at) FROM hit
    ON CONFLICT (request_id, kind, target) WHERE kind IN ('breached', 'at_risk') DO NOTHING
)
SELECT count(*) FROM hit
"""

_DONE_COLUMN = {"response": "responded_at", "resolution": "resolved_at"}
_OTHER = {"response": "resolution", "resolution": "response"}


def check_all_breaches(now: datetime | None = None) -> list[dict[str, Any]]:
    """Mark every target now past due (running, not met, not exempt) as breached, once.

    Returns the guide's structure, one entry per request with new breaches:
    [{"request_id", "title", "priority", "breaches": [{"type", "hours_overdue"}]}].
    """
    now = now or utcnow()
    found: dict[int, list[dict[str, Any]]] = {}
    result: list[dict[str, Any]] = []
    with unit_of_work():
        for target in TARGETS:
            sql = _BREACH_SQL.format(t=target, other=_OTHER[target], done=_DONE_COLUMN[target])
            for request_id, due_at in db.session.execute(text(sql), {"now": now}):
                overdue = round((now - due_at).total_seconds() / 3600, 2)
                found.setdefault(request_id, []).append({"type": target, "hours_overdue": overdue})
    if found:
        rows = db.session.execute(
            select(ServiceRequest.id, ServiceRequest.title, ServiceRequest.priority)
            .where(ServiceRequest.id.in_(list(found))))
        for request_id, title, priority in rows:
            result.append({"request_id": request_id, "title": title, "priority": priority,
                           "breaches": found[request_id]})
        result.sort(key=lambda r: -max(b["hours_overdue"] for b in r["breaches"]))
    return result


def check_at_risk(now: datetime | None = None) -> int:
    """Flag targets past their warning point (75% of the window by default), once; returns how many."""
    now = now or utcnow()
    flagged = 0
    with unit_of_work():
        for target in TARGETS:
            sql = _AT_RISK_SQL.format(t=target, done=_DONE_COLUMN[target])
            flagged += db.session.execute(text(sql), {"now": now}).scalar_one()
    return flagged


# ---------------------------------------------------------------- presentation helpers

@dataclass
class TargetState:
    """One target of a clock as a person reads it."""

    target: str                 # "response" or "resolution"
    hours: float
    due_at: datetime | None
    done_at: datetime | None
    state: str                  # met, missed, breached, paused, exempt, at_risk, running
    seconds_left: float | None  # negative when overdue


def target_states(metric: SlaMetric | None, now: datetime, exemptions: list[SlaExemption] | None = None,
                  show_exempt: bool = True) -> list[TargetState]:
    """Each target's state: met, missed (met late), breached, paused, exempt, at risk or running.

    Exemptions are an internal matter: with `show_exempt` False an exempt target reads as paused.
    """
    if metric is None or metric.definition_id is None:
        return []
    if exemptions is None:
        exemptions = list_exemptions(metric.request_id)
    active = [x for x in exemptions if x.is_active(now)]
    states = []
    for target, done in (("response", metric.responded_at), ("resolution", metric.resolved_at)):
        hours_value = getattr(metric, f"{target}_target_hours")
        due = getattr(metric, f"{target}_due_at")
        breached = getattr(metric, f"{target}_breached_at") is not None
        if done is not None:
            state = "missed" if breached or getattr(metric, f"{target}_sla_met") is False else "met"
        elif breached:
            state = "breached"
        elif any(x.covers(target) for x in active):
            state = "exempt" if show_exempt else "paused"
        elif metric.paused_since is not None:
            state = "paused"
        elif getattr(metric, f"{target}_at_risk_at") is not None or (
                getattr(metric, f"{target}_warn_at") is not None and getattr(metric, f"{target}_warn_at") <= now):
            state = "at_risk"
        else:
            state = "running"
        left = (due - now).total_seconds() if due is not None and done is None else None
        states.append(TargetState(target, float(hours_value), due, done, state, left))
    return states
