"""The daily trend table and the SLA report built from it.

`calculate_trends` recounts recent days of `trend_daily` (per UTC day, category and priority) from
the requests and SLA clocks, each count by the day its event happened: created, resolved (within
or past the resolution target) and breached (response, resolution). Recounting a day replaces its
rows, so running the job twice gives the same numbers; only the last TREND_RECOUNT_DAYS days are
recounted each hour (events land on the day they happen), and an empty table is filled from the
first request on. Reports read only this table, never the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, text

from portal.domain.workflow import PRIORITIES, PRIORITY_LABELS
from portal.extensions import db
from portal.models import ServiceRequest, TrendDaily
from portal.models._time import utcnow
from portal.services.uow import unit_of_work

COUNTS = ("created", "resolved", "resolved_within_sla", "resolved_late", "response_breached",
          "resolution_breached")

# One statement recounts [start, end): every count is an index range scan on its own timestamp
# (migration 0005_exports), then one upsert; rows of the range not written now had their last
# request move away (recategorised, reopened) and are deleted.
_RECOUNT_SQL = text("""
WITH created AS (
    SELECT (sr.created_at AT TIME ZONE 'UTC')::date AS day, sr.category, sr.priority, count(*) AS n
      FROM service_request sr
     WHERE sr.created_at >= :start AND sr.created_at < :end
     GROUP BY 1, 2, 3
), resolved AS (
    SELECT (sr.resolved_at AT TIME ZONE 'UTC')::date AS day, sr.category, sr.priority, count(*) AS n,
           count(*) FILTER (WHERE m.resolution_sla_met) AS within,
           count(*) FILTER (WHERE NOT m.resolution_sla_met) AS late
      FROM service_request sr LEFT JOIN sla_metric m ON m.request_id = sr.id
     WHERE sr.resolved_at >= :start AND sr.resolved_at < :end
     GROUP BY 1, 2, 3
), response_breached AS (
    SELECT (m.response_breached_at AT TIME ZONE 'UTC')::date AS day, sr.category, sr.priority, count(*) AS n
      FROM sla_metric m JOIN service_request sr ON sr.id = m.request_id
     WHERE m.response_breached_at >= :start AND m.response_breached_at < :end
     GROUP BY 1, 2, 3
), resolution_breached AS (
    SELECT (m.resolution_breached_at AT TIME ZONE 'UTC')::date AS day, sr.category, sr.priority, count(*) AS n
      FROM sla_metric m JOIN service_request sr ON sr.id = m.request_id
     WHERE m.resolution_breached_at >= :start AND m.resolution_breached_at < :end
     GROUP BY 1, 2, 3
), keys AS (
    SELECT day, category, priority FROM created
    UNION SELECT day, category, priority FROM resolved
    UNION SELECT day, category, priority FROM response_breached
    UNION SELECT day, category, priority FROM resolution_breached
)
INSERT INTO trend_daily (day, category, priority, created, resolved, resolved_within_sla, resolved_late,
                         response_breached, resolution_breached, computed_at)
SELECT k.day, k.category, k.priority, coalesce(c.n, 0), coalesce(r.n, 0), coalesce(r.within, 0),
       coalesce(r.late, 0), coalesce(rb.n, 0), coalesce(sb.n, 0), :now
  FROM keys k
  LEFT JOIN created c USING (day, category, priority)
  LEFT JOIN resolved r USING (day, category, priority)
  LEFT JOIN response_breached rb USING (day, category, priority)
  LEFT JOIN resolution_breached sb USING (day, category, priority)
ON CONFLICT (day, category, priority) DO UPDATE SET
    created = EXCLUDED.created, resolved = EXCLUDED.resolved,
    resolved_within_sla = EXCLUDED.resolved_within_sla, resolved_late = EXCLUDED.resolved_late,
    response_breached = EXCLUDED.response_breached, resolution_breached = EXCLUDED.resolution_breached,
    computed_at = EXCLUDED.computed_at
""")


def _midnight(day: date) -> datetime:
    from datetime import UTC

    return datetime.combine(day, time.min, tzinfo=UTC)


def calculate_trends(days: int | None = None, today: date | None = None) -> dict:
    """Recount the last `days` days (TREND_RECOUNT_DAYS); an empty table is filled from the first request."""
    today = today or utcnow().date()
    days = days or current_app.config["TREND_RECOUNT_DAYS"]
    first = today - timedelta(days=days - 1)
    if db.session.scalar(select(TrendDaily.day).limit(1)) is None:
        oldest = db.session.scalar(select(func.min(ServiceRequest.created_at)))
        if oldest is not None:
            first = min(first, oldest.date())
    now = utcnow()
    start, end = _midnight(first), _midnight(today + timedelta(days=1))
    with unit_of_work():
        db.session.execute(_RECOUNT_SQL, {"start": start, "end": end, "now": now})
        stale = db.session.execute(TrendDaily.__table__.delete().where(
            TrendDaily.day >= first, TrendDaily.day <= today, TrendDaily.computed_at < now))
    return {"from": first.isoformat(), "to": today.isoformat(), "days": (today - first).days + 1,
            "stale_rows_removed": stale.rowcount or 0}


# ---------------------------------------------------------------- the report's numbers

@dataclass
class Bucket:
    """The counts of one period (a day or a week) or one group (priority, category)."""

    label: str
    start: date | None = None   # a series' period: its first day
    created: int = 0
    resolved: int = 0
    within: int = 0
    late: int = 0
    response_breached: int = 0
    resolution_breached: int = 0

    @property
    def met_rate(self) -> float | None:
        decided = self.within + self.late
        return self.within / decided if decided else None

    @property
    def breached(self) -> int:
        return self.response_breached + self.resolution_breached

    def add(self, row) -> None:
        self.created += row.created
        self.resolved += row.resolved
        self.within += row.resolved_within_sla
        self.late += row.resolved_late
        self.response_breached += row.response_breached
        self.resolution_breached += row.resolution_breached


@dataclass
class ReportData:
    start: date
    end: date
    total: Bucket
    series: list[Bucket] = field(default_factory=list)
    series_unit: str = "day"
    by_priority: list[Bucket] = field(default_factory=list)
    by_category: list[Bucket] = field(default_factory=list)
    computed_at: datetime | None = None


def report_data(start: date, end: date) -> ReportData:
    """Totals, a daily (or weekly, over ~2 months) series and splits by priority and category."""
    from portal.services.categories import names

    rows = list(db.session.scalars(select(TrendDaily).where(TrendDaily.day >= start, TrendDaily.day <= end)
                                   .order_by(TrendDaily.day)))
    weekly = (end - start).days + 1 > 62
    series: dict[date, Bucket] = {}
    day = start
    while day <= end:
        key = day - timedelta(days=(day - start).days % 7) if weekly else day
        series.setdefault(key, Bucket(f"{key:%d %b}", start=key))
        day += timedelta(days=1)
    total = Bucket("All")
    priorities = {p: Bucket(PRIORITY_LABELS[p]) for p in reversed(PRIORITIES)}
    category_names = names()
    categories: dict[str, Bucket] = {}
    for row in rows:
        key = row.day - timedelta(days=(row.day - start).days % 7) if weekly else row.day
        series[key].add(row)
        total.add(row)
        priorities.setdefault(row.priority, Bucket(row.priority)).add(row)
        categories.setdefault(row.category, Bucket(category_names.get(row.category, row.category))).add(row)
    computed = max((r.computed_at for r in rows), default=None)
    return ReportData(start, end, total, list(series.values()), "week" if weekly else "day",
                      list(priorities.values()), sorted(categories.values(), key=lambda b: -b.created), computed)


def write_report_pdf(path: Path, start: date, end: date, owner_name: str) -> int:
    """Write the SLA report for [start, end] to `path`; returns the number of requests created in it."""
    from portal.services.reports_pdf import sla_report_pdf

    data = report_data(start, end)
    sla_report_pdf(path, data, owner_name)
    return data.total.created
