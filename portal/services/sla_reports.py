"""SLA reporting: breach lists, statistics, compliance and the dashboard summary (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import joinedload

from portal.domain.workflow import OPEN_STATUSES, PRIORITIES, PRIORITY_RANK, STATUSES
from portal.extensions import db
from portal.models import Category, ServiceRequest, SlaEvent, SlaMetric, User
from portal.models._time import utcnow
from portal.paging import Page, as_id, clamp_page, whole_number
from portal.services.errors import ValidationFailed

DAYS_MIN, DAYS_MAX = 1, 365


def parse_days(raw: Any, default: int = 30) -> int:
    """A reporting window in days, 1..365; ValidationFailed otherwise."""
    if raw in (None, ""):
        return default
    days = whole_number(raw, DAYS_MIN, DAYS_MAX)
    if days is None:
        raise ValidationFailed({"days": f"Use a whole number of days from {DAYS_MIN} to {DAYS_MAX}."})
    return days


# ---------------------------------------------------------------- breach and at-risk list

def _epoch_hours(delta) -> Any:
    return func.extract("epoch", delta) / 3600.0


@dataclass
class BreachFilters:
    """Filters of the manager's breach page and the dashboard widget."""

    priority: str = ""
    category: str = ""
    assignee: str = ""          # "", "none" or a user id
    date_from: date | None = None
    date_to: date | None = None
    state: str = ""             # "", "breached" or "at_risk"
    errors: dict[str, str] = field(default_factory=dict)

    def as_query(self, **extra: Any) -> dict[str, Any]:
        values = {"priority": self.priority, "category": self.category, "assignee": self.assignee,
                  "state": self.state, "from": self.date_from.isoformat() if self.date_from else "",
                  "to": self.date_to.isoformat() if self.date_to else "", **extra}
        return {k: v for k, v in values.items() if v}


def parse_breach_filters(args: Any, strict: bool = False) -> BreachFilters:
    """Read breach-list filters from a mapping of strings."""
    f = BreachFilters()
    errors: dict[str, str] = {}
    priority = (args.get("priority") or "").strip()
    if priority and priority not in PRIORITIES:
        errors["priority"] = f"Unknown priority '{priority[:40]}'."
    else:
        f.priority = priority
    category = (args.get("category") or "").strip()
    if category and category not in set(db.session.scalars(select(Category.code))):
        errors["category"] = f"Unknown category '{category[:40]}'."
    else:
        f.category = category
    assignee = (args.get("assignee") or "").strip()
    if assignee and assignee != "none" and as_id(assignee) is None:
        errors["assignee"] = "Use 'none' or a user id."
    else:
        f.assignee = assignee
    state = (args.get("state") or "").strip()
    if state and state not in ("breached", "at_risk"):
        errors["state"] = "Use 'breached' or 'at_risk'."
    else:
        f.state = state
    for key, attr in (("from", "date_from"), ("to", "date_to")):
        raw = (args.get(key) or "").strip()
        if raw:
            try:
                setattr(f, attr, date.fromisoformat(raw))
            except ValueError:
                errors[key] = "Use a date like 2026-11-01."
    if f.date_from and f.date_to and f.date_to < f.date_from:
        errors["to"] = "The end date is before the start date."
        f.date_to = None
    if strict and errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    f.errors = errors
    return f


@dataclass
class BreachRow:
    """One request on the breach page."""

    request: ServiceRequest
    metric: SlaMetric
    state: str                  # "breached" or "at_risk"
    hours_overdue: float        # > 0 when breached
    hours_left: float | None    # for at-risk rows: time to the next due


def breach_list(f: BreachFilters, page: int = 1, per_page: int = 25, now: datetime | None = None) -> Page:
    """Open requests that have breached or are at risk, most overdue first."""
    now = now or utcnow()
    m = SlaMetric
    running_response = and_(m.responded_at.is_(None), m.response_due_at.is_not(None))
    running_resolution = and_(m.resolved_at.is_(None), m.resolution_due_at.is_not(None))
    overdue = func.greatest(
        case((and_(m.response_breached_at.is_not(None), running_response),
              _epoch_hours(literal(now) - m.response_due_at)), else_=None),
        case((and_(m.resolution_breached_at.is_not(None), running_resolution),
              _epoch_hours(literal(now) - m.resolution_due_at)), else_=None),
        case((m.response_breached_at.is_not(None), _epoch_hours(m.responded_at - m.response_due_at)), else_=None),
    )
    next_due = func.least(
        case((and_(running_response, m.response_breached_at.is_(None)), m.response_due_at), else_=None),
        case((and_(running_resolution, m.resolution_breached_at.is_(None)), m.resolution_due_at), else_=None),
    )
    at_risk = or_(and_(m.response_at_risk_at.is_not(None), m.responded_at.is_(None)),
                  and_(m.resolution_at_risk_at.is_not(None), m.resolved_at.is_(None)))
    stmt = (select(ServiceRequest, m, overdue.label("overdue"), next_due.label("next_due"))
            .join(m, m.request_id == ServiceRequest.id)
            .options(joinedload(ServiceRequest.assignee))
            .where(ServiceRequest.status.in_(OPEN_STATUSES)))
    if f.state == "breached":
        stmt = stmt.where(m.is_breached.is_(True))
    elif f.state == "at_risk":
        stmt = stmt.where(m.is_breached.is_(False), at_risk)
    else:
        stmt = stmt.where(or_(m.is_breached.is_(True), at_risk))
    if f.priority:
        stmt = stmt.where(ServiceRequest.priority == f.priority)
    if f.category:
        stmt = stmt.where(ServiceRequest.category == f.category)
    if f.assignee == "none":
        stmt = stmt.where(ServiceRequest.assignee_id.is_(None))
    elif f.assignee:
        stmt = stmt.where(ServiceRequest.assignee_id == as_id(f.assignee))
    if f.date_from:
        stmt = stmt.where(ServiceRequest.created_at >= datetime.combine(f.date_from, datetime.min.time(), now.tzinfo))
    if f.date_to and f.date_to < date.max:
        stmt = stmt.where(ServiceRequest.created_at < datetime.combine(f.date_to + timedelta(days=1),
                                                                       datetime.min.time(), now.tzinfo))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = clamp_page(page, total, per_page)
    rows = db.session.execute(
        stmt.order_by(m.is_breached.desc(), overdue.desc().nulls_last(), next_due.asc().nulls_last(),
                      ServiceRequest.id)
        .limit(per_page).offset((page - 1) * per_page))
    items = []
    for req, metric, hours_over, due in rows:
        left = round((due - now).total_seconds() / 3600, 2) if due is not None else None
        items.append(BreachRow(req, metric, "breached" if metric.is_breached else "at_risk",
                               round(float(hours_over or 0), 2), left))
    return Page(items, total, page, per_page)


# ---------------------------------------------------------------- statistics and compliance

def statistics(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Breaches recorded in the last `days` days, by type, priority and category, plus compliance."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    rows = db.session.execute(
        select(SlaEvent.target, ServiceRequest.priority, ServiceRequest.category, func.count())
        .join(ServiceRequest, ServiceRequest.id == SlaEvent.request_id)
        .where(SlaEvent.kind == "breached", SlaEvent.at >= since, SlaEvent.at <= now)
        .group_by(SlaEvent.target, ServiceRequest.priority, ServiceRequest.category))
    result: dict[str, Any] = {"days": days, "total_breaches": 0, "response_breaches": 0, "resolution_breaches": 0,
                              "breaches_by_priority": {}, "breaches_by_category": {}}
    for target, priority, category, count in rows:
        result["total_breaches"] += count
        result[f"{target}_breaches"] += count
        result["breaches_by_priority"][priority] = result["breaches_by_priority"].get(priority, 0) + count
        result["breaches_by_category"][category] = result["breaches_by_category"].get(category, 0) + count
    met, decided = _met_counts(since, now)
    result["targets_met"] = met
    result["targets_decided"] = decided
    result["compliance_rate"] = round(met / decided, 4) if decided else None
    return result


def _decided_targets(since: datetime, now: datetime):
    """One row per decided target (met or breached) of clocks started in the window."""
    m = SlaMetric
    base = (select(m.request_id, m.created_at, literal("response").label("target"),
                   m.response_sla_met.label("met"))
            .where(m.response_sla_met.is_not(None), m.created_at >= since, m.created_at <= now))
    other = (select(m.request_id, m.created_at, literal("resolution").label("target"),
                    m.resolution_sla_met.label("met"))
             .where(m.resolution_sla_met.is_not(None), m.created_at >= since, m.created_at <= now))
    return base.union_all(other).subquery()


def _met_counts(since: datetime, now: datetime) -> tuple[int, int]:
    t = _decided_targets(since, now)
    met, decided = db.session.execute(
        select(func.count().filter(t.c.met.is_(True)), func.count()).select_from(t)).one()
    return int(met), int(decided)


def compliance_report(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Share of targets met per category, priority and agent, and by week, over the last `days` days."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    t = _decided_targets(since, now)
    met = func.count().filter(t.c.met.is_(True))

    def grouped(column, label):
        rows = db.session.execute(
            select(column.label("key"), met.label("met"), func.count().label("total"))
            .select_from(t).join(ServiceRequest, ServiceRequest.id == t.c.request_id)
            .outerjoin(User, User.id == ServiceRequest.assignee_id)
            .group_by(column).order_by(column))
        return [{label: key, "met": m_, "total": total, "rate": round(m_ / total, 4) if total else None}
                for key, m_, total in rows]

    by_priority = grouped(ServiceRequest.priority, "priority")
    by_priority.sort(key=lambda r: PRIORITY_RANK.get(r["priority"], 99))
    by_agent = grouped(func.coalesce(User.name, "Unassigned"), "agent")
    week = func.date_trunc("week", t.c.created_at)
    weekly = [{"week": w.date().isoformat(), "met": m_, "total": total, "rate": round(m_ / total, 4)}
              for w, m_, total in db.session.execute(
                  select(week, met, func.count()).select_from(t).group_by(week).order_by(week))]
    overall_met, overall_total = _met_counts(since, now)
    return {
        "days": days,
        "overall": {"met": overall_met, "total": overall_total,
                    "rate": round(overall_met / overall_total, 4) if overall_total else None},
        "by_category": grouped(ServiceRequest.category, "category"),
        "by_priority": by_priority,
        "by_agent": by_agent,
        "weekly": weekly,
    }


def dashboard_summary(now: datetime | None = None) -> dict[str, Any]:
    """The admin dashboard's cards: open work, breached now, at risk, 30-day met rate."""
    now = now or utcnow()
    open_filter = ServiceRequest.status.in_(OPEN_STATUSES)
    by_status = dict(db.session.execute(
        select(ServiceRequest.status, func.count()).where(open_filter).group_by(ServiceRequest.status)).all())
    by_priority = dict(db.session.execute(
        select(ServiceRequest.priority, func.count()).where(open_filter).group_by(ServiceRequest.priority)).all())
    m = SlaMetric
    breached_now = db.session.scalar(select(func.count()).select_from(m).join(
        ServiceRequest, ServiceRequest.id == m.request_id).where(open_filter, m.is_breached.is_(True))) or 0
    at_risk_now = db.session.scalar(select(func.count()).select_from(m).join(
        ServiceRequest, ServiceRequest.id == m.request_id).where(
        open_filter, m.is_breached.is_(False),
        or_(and_(m.response_at_risk_at.is_not(None), m.responded_at.is_(None)),
            and_(m.resolution_at_risk_at.is_not(None), m.resolved_at.is_(None))))) or 0
    met, decided = _met_counts(now - timedelta(days=30), now)
    return {
        "generated_at": now.isoformat(),
        "open_total": sum(by_status.values()),
        "open_by_status": {s: by_status.get(s, 0) for s in STATUSES if s in OPEN_STATUSES},
        "open_by_priority": {p: by_priority.get(p, 0) for p in reversed(PRIORITIES)},
        "breached_now": breached_now,
        "at_risk_now": at_risk_now,
        "met_rate_30d": round(met / decided, 4) if decided else None,
        "targets_decided_30d": decided,
    }
