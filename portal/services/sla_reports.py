"""SLA reporting: breach lists, statistics, compliance and the dashboard summary (read-only)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Select, and_, case, cast, func, literal, or_, select, tuple_
from sqlalchemy.orm import joinedload

from portal.domain import sla_rules
from portal.domain.workflow import OPEN_STATUSES, PRIORITIES, PRIORITY_RANK, STATUSES
from portal.extensions import db
from portal.models import Category, RequestTally, ServiceRequest, SlaExemption, SlaMetric, User
from portal.models._time import utcnow
from portal.paging import Page, as_id, clamp_page, whole_number
from portal.services import request_tally, sla_rollup
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


FILTER_KEYS = ("priority", "category", "assignee", "state", "exempt", "from", "to")
EXEMPT_CHOICES = ("show", "hide")
END_BEFORE_START = "The end date is before the start date."


@dataclass
class BreachFilters:
    """Filters of the manager's breach page and the dashboard widget.

    `submitted` is what was asked for, as typed; `refused` says none of it is applied (a date range
    that ends before it starts), so the list is the unfiltered one while the form shows the request.
    """

    priority: str = ""
    category: str = ""
    assignee: str = ""          # "", "none" or a user id
    date_from: date | None = None
    date_to: date | None = None
    state: str = ""             # "", "breached" or "at_risk"
    exempt: str = ""            # "" (show) or "hide": leave out breaches every breached target of which is exempt now
    # An agent's read-only view: only requests assigned to this user or to nobody.
    mine_or_unassigned: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    submitted: dict[str, str] = field(default_factory=dict)
    refused: bool = False

    def _applied(self) -> dict[str, str]:
        return {"priority": self.priority, "category": self.category, "assignee": self.assignee,
                "state": self.state, "exempt": self.exempt,
                "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else ""}

    def as_query(self, **extra: Any) -> dict[str, Any]:
        """The query string that shows this list again: a refused submission is asked for again as
        typed, so the poll and the pager keep showing the refusal rather than quietly dropping it."""
        values = {**(self.submitted if self.refused else self._applied()), **extra}
        return {k: v for k, v in values.items() if v}

    def form_value(self, key: str) -> str:
        """What the filter form shows for `key`: the applied value, or what was typed if it was refused."""
        if self.refused or key in self.errors:
            return self.submitted.get(key, "")
        return self._applied()[key]


def parse_breach_filters(args: Any, strict: bool = False) -> BreachFilters:
    """Read breach-list filters from a mapping of strings.

    A value that is not valid is left out and named in `errors`. A range whose end is before its
    start refuses the whole submission: nothing of it is applied (which half was meant is anyone's
    guess, and the rest was chosen together with it). `strict` (the API) raises ValidationFailed.
    """
    submitted = {key: (args.get(key) or "").strip() for key in FILTER_KEYS}
    f = BreachFilters(submitted={k: v for k, v in submitted.items() if v})
    errors: dict[str, str] = {}
    priority = submitted["priority"]
    if priority and priority not in PRIORITIES:
        errors["priority"] = f"Unknown priority '{priority[:40]}'."
    else:
        f.priority = priority
    category = submitted["category"]
    if category and category not in set(db.session.scalars(select(Category.code))):
        errors["category"] = f"Unknown category '{category[:40]}'."
    else:
        f.category = category
    assignee = submitted["assignee"]
    if assignee and assignee != "none" and as_id(assignee) is None:
        errors["assignee"] = "Use 'none' or a user id."
    else:
        f.assignee = assignee
    state = submitted["state"]
    if state and state not in ("breached", "at_risk"):
        errors["state"] = "Use 'breached' or 'at_risk'."
    else:
        f.state = state
    exempt = submitted["exempt"]
    if exempt and exempt not in EXEMPT_CHOICES:
        errors["exempt"] = "Use 'show' or 'hide' for exempt breaches."
    else:
        # "show" is the default: left out of the query string.
        f.exempt = "hide" if exempt == "hide" else ""
    for key, attr in (("from", "date_from"), ("to", "date_to")):
        if submitted[key]:
            try:
                setattr(f, attr, date.fromisoformat(submitted[key]))
            except ValueError:
                errors[key] = "Use a date like 2026-11-01."
    if f.date_from and f.date_to and f.date_to < f.date_from:
        errors["to"] = END_BEFORE_START
        f = BreachFilters(submitted=f.submitted, refused=True)
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
    # Staff only: an exemption active now over the row's breach (sla_rules.breach_exemption).
    exemption: sla_rules.BreachExemption | None = None
    # When the time shown keeps running, from when (the page ticks it, static/js/portal.js): the due
    # time of the most overdue running breached target, or for an at-risk row its next due time.
    overdue_from: datetime | None = None
    due_at: datetime | None = None


def _running_overdue_from(metric: SlaMetric, hours_over: float, now: datetime) -> datetime | None:
    """The due time the row's overdue hours run from, when they keep running (a breached target
    still open); None when the largest overdue is a late response already given (it stays put)."""
    running = [due for due, breached, done in (
        (metric.response_due_at, metric.response_breached_at, metric.responded_at),
        (metric.resolution_due_at, metric.resolution_breached_at, metric.resolved_at)) if due and breached and not done]
    if not running or (now - min(running)).total_seconds() / 3600 < hours_over - 0.01:
        return None
    return min(running)


def _at_risk() -> Any:
    m = SlaMetric
    return or_(and_(m.response_at_risk_at.is_not(None), m.responded_at.is_(None)),
               and_(m.resolution_at_risk_at.is_not(None), m.resolved_at.is_(None)))


def listed_clocks(state: str = "") -> Any:
    """Open clocks that are breached or at risk (or only one `state`): the same condition as the
    partial index ix_sla_metric_breach_list (models.sla.BREACH_LIST_SQL), so every read of the
    list, its count and the dashboard's cards stays within the few open problems."""
    m = SlaMetric
    listed = and_(m.status.in_(sorted(OPEN_STATUSES, key=STATUSES.index)), or_(m.is_breached, _at_risk()))
    if state == "breached":
        return and_(listed, m.is_breached)
    if state == "at_risk":
        return and_(listed, m.is_breached.is_(False))
    return listed


def _active_exemptions(now: datetime) -> Any:
    """Exemptions in force at `now` (SlaExemption.is_active, in SQL)."""
    x = SlaExemption
    return and_(x.granted_at <= now, or_(x.revoked_at.is_(None), x.revoked_at > now),
                or_(x.expires_at.is_(None), x.expires_at > now))


def _not_exempt_breach(now: datetime) -> Any:
    """Clocks that are not an exempt breach (sla_rules.exempt_breach): at risk only, or with a
    breached target no active exemption covers. NOT EXISTS per target, by the request_id index."""
    m, x = SlaMetric, SlaExemption

    def uncovered(target: str) -> Any:
        breached_at = getattr(m, f"{target}_breached_at")
        return and_(breached_at.is_not(None), ~select(x.id).where(
            x.request_id == m.request_id, x.exemption_type.in_((target, "both")), _active_exemptions(now)).exists())

    return or_(m.is_breached.is_(False), uncovered("response"), uncovered("resolution"))


def _page_exemptions(request_ids: list[int], now: datetime) -> dict[int, list[sla_rules.ExemptionSpan]]:
    """The active exemptions of a page's requests, in one query."""
    spans: dict[int, list[sla_rules.ExemptionSpan]] = defaultdict(list)
    if not request_ids:
        return spans
    x = SlaExemption
    for request_id, kind, granted_at, revoked_at, expires_at in db.session.execute(
            select(x.request_id, x.exemption_type, x.granted_at, x.revoked_at, x.expires_at)
            .where(x.request_id.in_(request_ids), _active_exemptions(now))):
        ends = [t for t in (revoked_at, expires_at) if t is not None]
        spans[request_id].append(sla_rules.ExemptionSpan(kind, granted_at, min(ends) if ends else None))
    return spans


def _listed_ids(f: BreachFilters, now: datetime) -> Select:
    """The request ids of the listed clocks `f` keeps (the list's rows, unordered)."""
    m = SlaMetric
    # Priority, category and assignee are the clock's own copies (migration 0023): the listed
    # clocks are filtered without joining every matching request; only dates join the requests.
    by_clock = []
    if f.priority:
        by_clock.append(m.priority == f.priority)
    if f.category:
        by_clock.append(m.category == f.category)
    if f.assignee == "none":
        by_clock.append(m.assignee_id.is_(None))
    elif f.assignee:
        by_clock.append(m.assignee_id == as_id(f.assignee))
    if f.mine_or_unassigned is not None:
        by_clock.append(or_(m.assignee_id == f.mine_or_unassigned, m.assignee_id.is_(None)))
    by_request = []
    if f.date_from:
        by_request.append(ServiceRequest.created_at >= datetime.combine(f.date_from, datetime.min.time(), now.tzinfo))
    if f.date_to and f.date_to < date.max:
        by_request.append(ServiceRequest.created_at < datetime.combine(f.date_to + timedelta(days=1),
                                                                       datetime.min.time(), now.tzinfo))
    ids = select(m.request_id).where(listed_clocks(f.state), *by_clock)
    if f.exempt == "hide":
        ids = ids.where(_not_exempt_breach(now))
    if by_request:
        ids = ids.join(ServiceRequest, ServiceRequest.id == m.request_id).where(*by_request)
    return ids


def breach_list_stamp(f: BreachFilters, now: datetime | None = None) -> str:
    """What the breach list with filters `f` shows, as a stamp that changes with it: how many clocks
    it lists and a sum of hashes of their change numbers (migration 0026: every write to a clock,
    its exemptions or its request's title takes a new one). A sum of one hash per row, not a
    maximum: a change committing after a later-numbered one still moves it. Read from the breach
    order index alone (it carries change_seq)."""
    m = SlaMetric
    token = func.hashint8extended(func.coalesce(m.change_seq, -cast(m.request_id, BigInteger)), 0)
    rows = _listed_ids(f, now or utcnow()).add_columns(token.label("token")).subquery()
    count, total = db.session.execute(select(func.count(), func.coalesce(func.sum(rows.c.token), 0))).one()
    return f"{count}:{total}"


def breach_list(f: BreachFilters, page: int = 1, per_page: int = 25, now: datetime | None = None) -> Page:
    """Open requests that have breached or are at risk, most overdue first.

    Each breached row carries the note of the exemptions active over its breach (its page's read in
    one query); `f.exempt == "hide"` leaves out the rows every breached target of which is exempt now.
    """
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
    # The page is chosen among the clocks alone (a few thousand rows from the partial index, sorted
    # in memory) and only its rows are joined to their requests; request filters join first.
    ids = _listed_ids(f, now)
    total = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    page = clamp_page(page, total, per_page)
    chosen = db.session.execute(
        ids.add_columns(overdue, next_due)
        .order_by(m.is_breached.desc(), overdue.desc().nulls_last(), next_due.asc().nulls_last(), m.request_id)
        .limit(per_page).offset((page - 1) * per_page)).all()
    loaded = {req.id: (req, metric) for req, metric in db.session.execute(
        select(ServiceRequest, m).join(m, m.request_id == ServiceRequest.id)
        .where(ServiceRequest.id.in_([row[0] for row in chosen]))
        .options(joinedload(ServiceRequest.assignee))).all()}
    exemptions = _page_exemptions([rid for rid, (_, metric) in loaded.items() if metric.is_breached], now)
    items = []
    for request_id, hours_over, due in chosen:
        if request_id not in loaded:
            continue
        req, metric = loaded[request_id]
        left = round((due - now).total_seconds() / 3600, 2) if due is not None else None
        note = sla_rules.breach_exemption(
            {t: getattr(metric, f"{t}_breached_at") for t in sla_rules.TARGETS_ORDER}, exemptions[request_id], now
        ) if metric.is_breached else None
        hours = round(float(hours_over or 0), 2)
        items.append(BreachRow(req, metric, "breached" if metric.is_breached else "at_risk", hours, left, note,
                               _running_overdue_from(metric, hours, now) if metric.is_breached else None, due))
    return Page(items, total, page, per_page)


# ---------------------------------------------------------------- statistics and compliance

def statistics(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Breaches recorded in the last `days` days, by type, priority and category, plus compliance.

    From the daily rollups (portal.services.sla_rollup): the same figures as counting every clock,
    at the cost of a few hundred rollup rows.
    """
    now = now or utcnow()
    since = now - timedelta(days=days)
    result: dict[str, Any] = {"days": days, **breach_counts(since, now)}
    met, decided = _met_counts(since, now)
    result["targets_met"] = met
    result["targets_decided"] = decided
    result["compliance_rate"] = round(met / decided, 4) if decided else None
    return result


def breach_counts(since: datetime, now: datetime) -> dict[str, Any]:
    """Breaches recorded in [since, now]: in all, by target, by priority and by category (the rollups)."""
    b = sla_rollup.breach_rows(since, now).subquery()
    rows = db.session.execute(
        select(b.c.priority, b.c.category, func.sum(b.c.response_breaches), func.sum(b.c.resolution_breaches))
        .group_by(b.c.priority, b.c.category))
    result: dict[str, Any] = {"total_breaches": 0, "response_breaches": 0, "resolution_breaches": 0,
                              "breaches_by_priority": {}, "breaches_by_category": {}}
    for priority, category, response, resolution in rows:
        response, resolution = int(response or 0), int(resolution or 0)
        if not response + resolution:
            continue
        result["total_breaches"] += response + resolution
        result["response_breaches"] += response
        result["resolution_breaches"] += resolution
        for key, name in ((priority, "breaches_by_priority"), (category, "breaches_by_category")):
            result[name][key] = result[name].get(key, 0) + response + resolution
    return result


def _met_counts(since: datetime, now: datetime) -> tuple[int, int]:
    """Targets met and decided of the clocks started in [since, now]."""
    t = sla_rollup.target_rows(since, now).subquery()
    met, decided = db.session.execute(select(
        func.coalesce(func.sum(t.c.response_met + t.c.resolution_met), 0),
        func.coalesce(func.sum(t.c.response_decided + t.c.resolution_decided), 0)).select_from(t)).one()
    return int(met), int(decided)


def weekly_met_counts(since: datetime, now: datetime | None = None) -> dict[date, tuple[int, int]]:
    """(targets met, targets decided) per week (its Monday, UTC) of the clocks started in [since, now]:
    the dashboard card's met rate, week by week, from the same rollup rows."""
    now = now or utcnow()
    t = sla_rollup.target_rows(since, now).subquery()
    week = func.date_trunc("week", t.c.day)
    rows = db.session.execute(select(week, func.sum(t.c.response_met + t.c.resolution_met),
                                     func.sum(t.c.response_decided + t.c.resolution_decided)).group_by(week))
    return {week_start.date(): (int(met or 0), int(decided or 0)) for week_start, met, decided in rows}


def compliance_report(days: int, now: datetime | None = None) -> dict[str, Any]:
    """Share of targets met per category, priority and agent, and by week, over the last `days` days.

    From the window's rollup rows (about 20 a day, and one per agent a day), whatever the number
    of requests: one pass with GROUPING SETS, one by agent.
    """
    now = now or utcnow()
    since = now - timedelta(days=days)
    t = sla_rollup.target_rows(since, now).subquery()
    week = func.date_trunc("week", t.c.day)
    keys = (t.c.category, t.c.priority, week)
    groups: dict[str, dict[Any, tuple[int, int]]] = {name: {} for name in ("category", "priority", "week",
                                                                          "overall")}
    rows = db.session.execute(
        select(*[func.grouping(k) for k in keys], *keys, func.sum(t.c.response_met + t.c.resolution_met),
               func.sum(t.c.response_decided + t.c.resolution_decided))
        .group_by(func.grouping_sets(*[tuple_(k) for k in keys], tuple_())))
    for g_category, g_priority, g_week, category, priority, week_start, met, total in rows:
        name, key = (("category", category) if not g_category else ("priority", priority) if not g_priority
                     else ("week", week_start) if not g_week else ("overall", None))
        groups[name][key] = (int(met or 0), int(total or 0))
    a = sla_rollup.target_rows(since, now, by="agent").subquery()
    by_name: dict[str, tuple[int, int]] = {}
    for name, met, total in db.session.execute(
            select(func.coalesce(User.name, "Unassigned"), func.sum(a.c.response_met + a.c.resolution_met),
                   func.sum(a.c.response_decided + a.c.resolution_decided))
            .select_from(a).outerjoin(User, User.id == a.c.assignee_id).group_by(func.coalesce(User.name,
                                                                                                "Unassigned"))):
        by_name[name] = (int(met or 0), int(total or 0))

    def rates(counts: dict[Any, tuple[int, int]], label: str, order) -> list[dict[str, Any]]:
        return [{label: key, "met": counts[key][0], "total": counts[key][1],
                 "rate": round(counts[key][0] / counts[key][1], 4)} for key in order if counts[key][1]]

    overall_met, overall_total = groups["overall"].get(None, (0, 0))
    return {
        "days": days,
        "overall": {"met": overall_met, "total": overall_total,
                    "rate": round(overall_met / overall_total, 4) if overall_total else None},
        "by_category": rates(groups["category"], "category", sorted(groups["category"])),
        "by_priority": rates(groups["priority"], "priority",
                             sorted(groups["priority"], key=lambda p: PRIORITY_RANK.get(p, 99))),
        "by_agent": rates(by_name, "agent", sorted(by_name)),
        "weekly": [{**row, "week": row["week"].date().isoformat()}
                   for row in rates(groups["week"], "week", sorted(groups["week"]))],
    }


def dashboard_summary(now: datetime | None = None) -> dict[str, Any]:
    """The admin dashboard's cards: open work, breached now, at risk, 30-day met rate."""
    now = now or utcnow()
    # From the request tally the database keeps (services/request_tally.py), summed both ways here.
    by_status: Counter[str] = Counter()
    by_priority: Counter[str] = Counter()
    for status, priority, count in request_tally.grouped((RequestTally.status, RequestTally.priority),
                                                         [RequestTally.status.in_(OPEN_STATUSES)]):
        by_status[status] += count
        by_priority[priority] += count
    breached_now, at_risk_now = db.session.execute(select(
        func.count().filter(SlaMetric.is_breached), func.count().filter(SlaMetric.is_breached.is_(False)))
        .where(listed_clocks())).one()
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
