"""Request counts from the tally the database keeps (migration 0019): exact, and never a count of requests.

`request_tally` has rows of (status, priority, category, assignee, n), written by a trigger on
service_request in each change's own transaction: +1 for a request's new combination, -1 for its
old one. The sum over any filter of those four columns is therefore exact at every moment, and
costs a walk of a few thousand small rows however many requests there are. `fold()` (the
`fold-request-tally` job, every minute) sums each combination's rows into one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, text

from portal.extensions import db
from portal.models import RequestTally

FOLD_LOCK = 0x5E1A_0019  # pg_try_advisory_xact_lock key: one fold at a time
# Each combination with more than one row becomes one row holding their sum (none when it is 0).
# Rows a change adds meanwhile are not in this statement's snapshot: they stay, and count.
FOLD = """
WITH gone AS (
    DELETE FROM request_tally WHERE id IN (
        SELECT id FROM (SELECT id, count(*) OVER (PARTITION BY status, priority, category, assignee_id) AS rows
                          FROM request_tally) AS t
         WHERE rows > 1)
    RETURNING status, priority, category, assignee_id, n)
INSERT INTO request_tally (status, priority, category, assignee_id, n)
SELECT status, priority, category, assignee_id, sum(n) FROM gone GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
"""
# Every combination counted afresh (bench/seed.py after a bulk load with the trigger off).
RECOUNT = """
DELETE FROM request_tally;
INSERT INTO request_tally (status, priority, category, assignee_id, n)
SELECT status, priority, category, assignee_id, count(*) FROM service_request GROUP BY 1, 2, 3, 4
"""


def total(conditions: Iterable[Any] = ()) -> int:
    """How many requests match `conditions` on RequestTally's status, priority, category, assignee_id."""
    return int(db.session.scalar(select(func.coalesce(func.sum(RequestTally.n), 0)).where(*conditions)))


def grouped(columns: tuple[Any, ...], conditions: Iterable[Any] = ()) -> list[tuple]:
    """(values of `columns`..., count) of the combinations with requests, e.g. open work by status and priority."""
    rows = db.session.execute(select(*columns, func.sum(RequestTally.n)).where(*conditions)
                              .group_by(*columns).having(func.sum(RequestTally.n) > 0))
    return [(*row[:-1], int(row[-1])) for row in rows]


def fold() -> dict[str, Any]:
    """Sum each combination's rows into one (the scheduler's `fold-request-tally`, every minute)."""
    if not db.session.scalar(select(func.pg_try_advisory_xact_lock(FOLD_LOCK))):
        db.session.rollback()
        return {"skipped": True, "rows": None}
    db.session.execute(text(FOLD))
    rows = db.session.scalar(select(func.count()).select_from(RequestTally))
    db.session.commit()
    return {"skipped": False, "rows": rows}
