"""SLA report rollups: per-day counts of targets met and breaches, exact at every moment.

`sla_rollup_target` (by the day a clock started) and `sla_rollup_breach` (by the day a breach was
recorded) hold the counts of "clean" days. Database triggers (migration 0013) write the day of
every change that moves a count into `sla_rollup_dirty`, in the change's own transaction, so a
report takes the rollup rows of clean days and counts live only what is not in them: the dirty
days, the part-day at the start of its window and today. `refresh()` (the `refresh-sla-rollup`
job, every few minutes) recounts the dirty days and clears them. Counts group by the clock's own
copies of its request's category, priority and assignee (migration 0023): no join to the requests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, text, union_all

from portal.extensions import db
from portal.models import (
    SlaMetric,
    SlaRollupAgent,
    SlaRollupBreach,
    SlaRollupDirty,
    SlaRollupTarget,
)
from portal.models._time import utcnow

REFRESH_LOCK = 0x5E1A_0011  # pg_try_advisory_xact_lock key: one recount at a time
DAYS_PER_STATEMENT = 31
# Every day that has a clock or a breach: to recount all of it (bench/seed.py after a bulk load).
ALL_DAYS = """
SELECT (created_at AT TIME ZONE 'UTC')::date FROM sla_metric
 UNION SELECT (response_breached_at AT TIME ZONE 'UTC')::date FROM sla_metric WHERE response_breached_at IS NOT NULL
 UNION SELECT (resolution_breached_at AT TIME ZONE 'UTC')::date FROM sla_metric WHERE resolution_breached_at IS NOT NULL
"""

_DECIDED = """
       count(*) FILTER (WHERE m.response_sla_met), count(m.response_sla_met),
       count(*) FILTER (WHERE m.resolution_sla_met), count(m.resolution_sla_met)
  FROM unnest(CAST(:days AS date[])) AS d(day)
  JOIN sla_metric m ON m.created_at >= d.day AT TIME ZONE 'UTC'
                   AND m.created_at < (d.day + 1) AT TIME ZONE 'UTC'
 WHERE m.response_sla_met IS NOT NULL OR m.resolution_sla_met IS NOT NULL
"""
RECOUNT_TARGETS = """
INSERT INTO sla_rollup_target (day, category, priority, response_met, response_decided,
                               resolution_met, resolution_decided)
SELECT d.day, m.category, m.priority,""" + _DECIDED + " GROUP BY 1, 2, 3"
RECOUNT_AGENTS = """
INSERT INTO sla_rollup_agent (day, assignee_id, response_met, response_decided, resolution_met,
                              resolution_decided)
SELECT d.day, m.assignee_id,""" + _DECIDED + " GROUP BY 1, 2"
RECOUNT_BREACHES = """
INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, resolution_breaches)
SELECT b.day, b.category, b.priority, count(*) FILTER (WHERE b.target = 'response'),
       count(*) FILTER (WHERE b.target = 'resolution')
  FROM (SELECT m.category, m.priority, d.day, 'response' AS target
          FROM unnest(CAST(:days AS date[])) AS d(day)
          JOIN sla_metric m ON m.response_breached_at >= d.day AT TIME ZONE 'UTC'
                           AND m.response_breached_at < (d.day + 1) AT TIME ZONE 'UTC'
        UNION ALL
        SELECT m.category, m.priority, d.day, 'resolution'
          FROM unnest(CAST(:days AS date[])) AS d(day)
          JOIN sla_metric m ON m.resolution_breached_at >= d.day AT TIME ZONE 'UTC'
                           AND m.resolution_breached_at < (d.day + 1) AT TIME ZONE 'UTC') b
 GROUP BY 1, 2, 3
"""


def refresh() -> dict[str, Any]:
    """Recount every dirty day and clear it; skipped while another recount runs.

    REPEATABLE READ: the recount and the clearing see one snapshot, so a change committed while
    it runs leaves its dirty row behind for the next recount instead of being lost.
    """
    session = db.session
    session.rollback()
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK}):
        session.rollback()
        return {"skipped": True, "days": 0}
    days = sorted(session.scalars(select(SlaRollupDirty.day).distinct()))
    for start in range(0, len(days), DAYS_PER_STATEMENT):
        batch = days[start:start + DAYS_PER_STATEMENT]
        for model, recount in ((SlaRollupTarget, RECOUNT_TARGETS), (SlaRollupAgent, RECOUNT_AGENTS),
                               (SlaRollupBreach, RECOUNT_BREACHES)):
            session.execute(model.__table__.delete().where(model.day.in_(batch)))
            session.execute(text(recount), {"days": batch})
    session.execute(SlaRollupDirty.__table__.delete().where(SlaRollupDirty.day.in_(days)))
    session.commit()
    return {"skipped": False, "days": len(days)}


# ---------------------------------------------------------------- reading a window

def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _window(since: datetime, now: datetime) -> tuple[date, date, list[tuple[datetime, datetime]]]:
    """(first and last day the rollup may answer for, the time ranges to count live) of [since, now]."""
    since, now = since.astimezone(UTC), now.astimezone(UTC)
    first_whole = since.date() if since == _midnight(since.date()) else since.date() + timedelta(days=1)
    today = now.date()
    last_whole = today - timedelta(days=1)
    dirty = sorted(db.session.scalars(select(SlaRollupDirty.day).distinct().where(
        SlaRollupDirty.day >= first_whole, SlaRollupDirty.day <= last_whole)))
    ranges = [(since, min(_midnight(first_whole), now)), (max(_midnight(today), since), now)]
    ranges += [(_midnight(d), _midnight(d + timedelta(days=1))) for d in dirty]
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted((a, b) for a, b in ranges if a < b or b == now):
        if merged and a <= merged[-1][1]:  # touching or overlapping: one range (yesterday dirty + today)
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return first_whole, last_whole, merged


def _clean(model, first_whole: date, last_whole: date) -> Any:
    dirty = select(SlaRollupDirty.day).where(SlaRollupDirty.day == model.day)
    return and_(model.day >= first_whole, model.day <= last_whole, ~dirty.exists())


def _live(stmt: Select, column, ranges: list[tuple[datetime, datetime]], now: datetime) -> list[Select]:
    """`stmt` once per range, limited to `column` in it (half-open, except the last moment `now`
    itself). One statement per range, not an OR of ranges: each is then an index range scan, where
    an OR of several ranges may be planned as a scan of the whole index."""
    return [stmt.where(column >= a, column < b if b < now else column <= b) for a, b in ranges]


def target_rows(since: datetime, now: datetime | None = None, by: str = "class") -> Select:
    """Targets decided and met of the clocks started in [since, now], one row per day and
    (category, priority) — or per day and assignee with by="agent": the rollup's clean days plus a
    live count of the rest."""
    now = now or utcnow()
    first_whole, last_whole, ranges = _window(since, now)
    model = SlaRollupAgent if by == "agent" else SlaRollupTarget
    m = SlaMetric
    keys = [m.assignee_id] if by == "agent" else [m.category, m.priority]
    rolled = select(model.day, *[getattr(model, k.key) for k in keys], model.response_met, model.response_decided,
                    model.resolution_met, model.resolution_decided).where(_clean(model, first_whole, last_whole))
    day = func.date(func.timezone("UTC", m.created_at))
    live = (select(day, *keys,
                   func.count().filter(m.response_sla_met.is_(True)), func.count(m.response_sla_met),
                   func.count().filter(m.resolution_sla_met.is_(True)), func.count(m.resolution_sla_met))
            .where(or_(m.response_sla_met.is_not(None), m.resolution_sla_met.is_not(None)))
            .group_by(day, *keys))
    return union_all(rolled, *_live(live, m.created_at, ranges, now))


def breach_rows(since: datetime, now: datetime | None = None) -> Select:
    """One row per (day, category, priority) with the breaches recorded in [since, now]."""
    now = now or utcnow()
    first_whole, last_whole, ranges = _window(since, now)
    b = SlaRollupBreach
    rolled = select(b.day, b.category, b.priority, b.response_breaches, b.resolution_breaches).where(
        _clean(b, first_whole, last_whole))
    m = SlaMetric
    parts = [rolled]
    for target, column in (("response", m.response_breached_at), ("resolution", m.resolution_breached_at)):
        day = func.date(func.timezone("UTC", column))
        parts += _live(
            select(day, m.category, m.priority,
                   func.count() if target == "response" else literal(0),
                   func.count() if target == "resolution" else literal(0))
            .group_by(day, m.category, m.priority), column, ranges, now)
    return union_all(*parts)
