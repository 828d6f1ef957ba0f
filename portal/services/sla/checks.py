"""The periodic SLA checks: mark new breaches and at-risk targets of every clock at once.

Set-based SQL over the indexed due and warning times, so a check costs the same however many
requests there are; each new breach or at-risk flag is also appended to the clock's history,
once (the unique index on those events makes a repeated check harmless).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from portal.domain import sla_rules
from portal.extensions import db
from portal.metrics import record_sla_breaches
from portal.models import ServiceRequest
from portal.models._time import utcnow
from portal.models.sla import TARGETS
from portal.services.uow import unit_of_work

# One statement per target: flag the clocks, then append the events for exactly the rows flagged.
# The breach type set here must agree with portal.domain.sla_rules.breach_type.
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
                found.setdefault(request_id, []).append(
                    {"type": target, "hours_overdue": sla_rules.hours_overdue(due_at, now)})
        # sla_breaches_total{category,priority,breach_type}, counted once this commits
        record_sla_breaches((request_id, b["type"]) for request_id, items in found.items() for b in items)
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


@dataclass(frozen=True)
class CheckRun:
    """What one periodic check did: new breaches (the guide's structure), new at-risk targets, alerts."""

    breaches: list[dict[str, Any]]
    at_risk: int
    alerts: int


def run_check(now: datetime | None = None) -> CheckRun:
    """The periodic check (every 5 minutes, or `flask sla check`): breaches, at-risk, then their mails."""
    from portal.services import notifications

    breaches = check_all_breaches(now)
    at_risk = check_at_risk(now)
    return CheckRun(breaches, at_risk, notifications.sla_alerts())
