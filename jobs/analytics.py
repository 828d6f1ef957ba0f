"""Jobs on the analytics queue: the periodic SLA breach check, rebuilding open clocks, trend counts."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def check_sla_breaches() -> dict:
    """Mark new breaches and at-risk targets (every 5 minutes); returns counts, details in job.meta."""
    from portal.services import sla
    from portal.services.health import record_sla_check

    with app_context():
        run = sla.run_check()
        record_sla_check()  # `flask doctor`, the status page and a metric read when it last ran
    summary = {"new_breaches": sum(len(b["breaches"]) for b in run.breaches), "requests": len(run.breaches),
               "new_at_risk": run.at_risk, "alerted_events": run.alerts}
    record_meta(**summary, breached_request_ids=[b["request_id"] for b in run.breaches][:500])
    return summary


def rebuild_sla_clocks(definition_id: int | None = None, calendar_id: int | None = None) -> int:
    """Recompute open clocks after a definition or calendar changed; progress in job.meta."""
    from portal.services import notifications, sla_admin

    with app_context():
        rebuilt = sla_admin.rebuild_open_clocks(
            definition_id=definition_id, calendar_id=calendar_id,
            progress=lambda done, total: record_meta(done=done, total=total))
        notifications.sla_alerts()  # a rebuild may breach many targets at once: one summary per person
    return rebuilt


def calculate_trends(days: int | None = None) -> dict:
    """Recount the recent days of the daily trend table the SLA reports read (hourly)."""
    from portal.services import reports

    with app_context():
        summary = reports.calculate_trends(days)
    record_meta(**summary)
    return summary


def refresh_sla_rollup() -> dict:
    """Fold the SLA report rollups' rows of each day into one per key (every 5 minutes; reports are
    exact whether it runs or not: it keeps the tables small)."""
    from portal.services import sla_rollup

    with app_context():
        summary = sla_rollup.fold()
    record_meta(**summary)
    return summary
