"""The dashboard's chart figures, each read where the rest of the portal reads it (read-only).

- SLA compliance by week: targets met of those decided, of the clocks started each week — the
  dashboard card's 30-day met rate week by week (sla_reports.weekly_met_counts: the SLA rollups,
  exact at every moment).
- Breaches by priority and by category over the last BREACH_DAYS days (sla_reports.breach_counts:
  the same rollups as the breach statistics).
- Requests opened and resolved per week (reports.report_data: the hourly `trend_daily` table the
  SLA report reads, so the current week is as of its last recount).

Weeks are ISO weeks (Monday to Sunday) in UTC, like the rollups' days. Nothing here scans the
requests: the SLA rollups count live only today and days not yet recounted, by index ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from portal.domain.workflow import PRIORITIES
from portal.models._time import utcnow
from portal.services import categories, reports, sla_reports

WEEKS = 12
BREACH_DAYS = 30


@dataclass
class Week:
    """One week of the weekly charts: targets met and decided, requests opened and resolved."""

    start: date
    met: int = 0
    decided: int = 0
    opened: int = 0
    resolved: int = 0

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def met_rate(self) -> float | None:
        return self.met / self.decided if self.decided else None


@dataclass
class Breaches:
    """Breaches recorded in [first, last] (whole UTC days): by priority (every one) and by category."""

    first: date
    last: date
    total: int = 0
    by_priority: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, str, int]] = field(default_factory=list)  # (code, name, n), most first


@dataclass
class ChartData:
    weeks: list[Week]
    breaches: Breaches
    volume_counted_at: datetime | None  # the trend table's last recount


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def chart_data(now: datetime | None = None) -> ChartData:
    """The last WEEKS weeks (this one so far included) and the last BREACH_DAYS days (today included)."""
    now = now or utcnow()
    today = now.astimezone(UTC).date()
    first_week = today - timedelta(days=today.weekday(), weeks=WEEKS - 1)
    weeks = {first_week + timedelta(weeks=i): Week(first_week + timedelta(weeks=i)) for i in range(WEEKS)}
    for start, (met, decided) in sla_reports.weekly_met_counts(_midnight(first_week), now).items():
        if start in weeks:
            weeks[start].met, weeks[start].decided = met, decided
    # More than 62 days: report_data's series is weekly, its weeks counted from first_week (a Monday).
    volume = reports.report_data(first_week, today)
    for bucket in volume.series:
        if bucket.start in weeks:
            weeks[bucket.start].opened, weeks[bucket.start].resolved = bucket.created, bucket.resolved
    first_day = today - timedelta(days=BREACH_DAYS - 1)
    counts = sla_reports.breach_counts(_midnight(first_day), now)
    names = categories.names()
    by_category = sorted(((code, names.get(code, code), n) for code, n in counts["breaches_by_category"].items()),
                         key=lambda row: (-row[2], row[1].lower()))
    breaches = Breaches(first_day, today, counts["total_breaches"],
                        [(p, counts["breaches_by_priority"].get(p, 0)) for p in reversed(PRIORITIES)], by_category)
    return ChartData(list(weeks.values()), breaches, volume.computed_at)
