"""SLA report rollups: per-day counts of targets met and breaches, exact at every moment.

`sla_rollup_target` (by the day a clock started, category and priority), `sla_rollup_agent` (by
that day and assignee) and `sla_rollup_breach` (by the day a breach was recorded) are sums of
rows: a trigger on `sla_metric` (migration 0024) inserts, in the change's own transaction, a row
with the difference each change makes (a target decided, a breach recorded, a clock added or
removed, a request recategorised, reprioritised or reassigned, which moves its clock's copies).
Rows are only inserted, so concurrent changes never wait on each other here. A report sums the
rows of its window's whole days, today included, and counts live only the part-day its window
starts with. `fold()` (the `refresh-sla-rollup` job, every 5 minutes) folds each day's rows into
one per key, so the tables stay one row per day and key plus the last minutes' changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, text, union_all

from portal.extensions import db
from portal.models import SlaMetric, SlaRollupAgent, SlaRollupBreach, SlaRollupTarget
from portal.models._time import utcnow

FOLD_LOCK = 0x5E1A_0011  # pg_try_advisory_xact_lock key: one fold at a time
# A report's `now` this close to the present counts its whole last day from the rollups.
PRESENT = timedelta(minutes=1)

# Every rollup recounted from the clocks (bench/seed.py after a bulk load with the triggers off;
# migration 0024 does the same).
RECOUNT_ALL = """
DELETE FROM sla_rollup_target;
DELETE FROM sla_rollup_agent;
DELETE FROM sla_rollup_breach;
INSERT INTO sla_rollup_target (day, category, priority, response_met, response_decided,
                               resolution_met, resolution_decided)
SELECT (created_at AT TIME ZONE 'UTC')::date, category, priority,
       count(*) FILTER (WHERE response_sla_met), count(response_sla_met),
       count(*) FILTER (WHERE resolution_sla_met), count(resolution_sla_met)
  FROM sla_metric
 WHERE response_sla_met IS NOT NULL OR resolution_sla_met IS NOT NULL
 GROUP BY 1, 2, 3;
INSERT INTO sla_rollup_agent (day, assignee_id, response_met, response_decided, resolution_met, resolution_decided)
SELECT (created_at AT TIME ZONE 'UTC')::date, assignee_id,
       count(*) FILTER (WHERE response_sla_met), count(response_sla_met),
       count(*) FILTER (WHERE resolution_sla_met), count(resolution_sla_met)
  FROM sla_metric
 WHERE response_sla_met IS NOT NULL OR resolution_sla_met IS NOT NULL
 GROUP BY 1, 2;
INSERT INTO sla_rollup_breach (day, category, priority, response_breaches, resolution_breaches)
SELECT day, category, priority, count(*) FILTER (WHERE target = 'response'),
       count(*) FILTER (WHERE target = 'resolution')
  FROM (SELECT (response_breached_at AT TIME ZONE 'UTC')::date AS day, category, priority, 'response' AS target
          FROM sla_metric WHERE response_breached_at IS NOT NULL
        UNION ALL
        SELECT (resolution_breached_at AT TIME ZONE 'UTC')::date, category, priority, 'resolution'
          FROM sla_metric WHERE resolution_breached_at IS NOT NULL) b
 GROUP BY 1, 2, 3;
"""


def _fold_sql(table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
    """Replace the rows of every (day, key) that has more than one by their sum, in one statement:
    rows a concurrent change inserts meanwhile are not in its snapshot and stay as they are."""
    match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM k.{k}" for k in ("day", *keys))
    columns = ", ".join(("day", *keys))
    sums = ", ".join(f"sum({c})" for c in counts)
    return f"""
WITH gone AS (
    DELETE FROM {table} t
     USING (SELECT {columns} FROM {table} GROUP BY {columns} HAVING count(*) > 1) k
     WHERE {match}
    RETURNING t.*)
INSERT INTO {table} ({columns}, {", ".join(counts)})
SELECT {columns}, {sums} FROM gone GROUP BY {columns}
HAVING {" OR ".join(f"sum({c}) <> 0" for c in counts)}"""


_DECIDED = ("response_met", "response_decided", "resolution_met", "resolution_decided")
FOLDS = {
    "sla_rollup_target": _fold_sql("sla_rollup_target", ("category", "priority"), _DECIDED),
    "sla_rollup_agent": _fold_sql("sla_rollup_agent", ("assignee_id",), _DECIDED),
    "sla_rollup_breach": _fold_sql("sla_rollup_breach", ("category", "priority"),
                                   ("response_breaches", "resolution_breaches")),
}


def fold() -> dict[str, Any]:
    """Fold each day's rows into one per key; skipped while another fold runs. Sums are unchanged,
    so reports read the same figures before, during and after it."""
    session = db.session
    session.rollback()
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": FOLD_LOCK}):
        session.rollback()
        return {"skipped": True, "rows": 0}
    folded = sum(session.execute(text(sql)).rowcount or 0 for sql in FOLDS.values())
    session.commit()
    return {"skipped": False, "rows": folded}


# ---------------------------------------------------------------- reading a window

def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _window(since: datetime, now: datetime) -> tuple[date, date, list[tuple[datetime, datetime]]]:
    """(first and last day the rollups answer for, the time ranges to count live) of [since, now]:
    the part-day the window starts with, and the last day when `now` is not the present (a report
    of an earlier moment: its day's rollup rows may hold later changes)."""
    since, now = since.astimezone(UTC), now.astimezone(UTC)
    first_whole = since.date() if since == _midnight(since.date()) else since.date() + timedelta(days=1)
    present = now >= utcnow() - PRESENT
    last_whole = now.date() if present else now.date() - timedelta(days=1)
    ranges = [(since, min(_midnight(first_whole), now))]
    if not present:
        ranges.append((max(_midnight(now.date()), since), now))
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted((a, b) for a, b in ranges if a < b or b == now):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return first_whole, last_whole, merged


def _whole_days(model, first_whole: date, last_whole: date) -> Any:
    return model.day.between(first_whole, last_whole)


def _live(stmt: Select, column, ranges: list[tuple[datetime, datetime]], now: datetime) -> list[Select]:
    """`stmt` once per range, limited to `column` in it (half-open, except the last moment `now`
    itself). One statement per range, not an OR of ranges: each is then an index range scan, where
    an OR of several ranges may be planned as a scan of the whole index."""
    return [stmt.where(column >= a, column < b if b < now else column <= b) for a, b in ranges]


def target_rows(since: datetime, now: datetime | None = None, by: str = "class") -> Select:
    """Targets decided and met of the clocks started in [since, now], one row per day and
    (category, priority) — or per day and assignee with by="agent": the rollups' whole days plus a
    live count of the rest (_window)."""
    now = now or utcnow()
    first_whole, last_whole, ranges = _window(since, now)
    model = SlaRollupAgent if by == "agent" else SlaRollupTarget
    m = SlaMetric
    keys = [m.assignee_id] if by == "agent" else [m.category, m.priority]
    rolled = select(model.day, *[getattr(model, k.key) for k in keys], model.response_met, model.response_decided,
                    model.resolution_met, model.resolution_decided).where(_whole_days(model, first_whole, last_whole))
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
        _whole_days(b, first_whole, last_whole))
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
