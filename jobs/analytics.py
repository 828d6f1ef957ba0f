"""SLA jobs on the analytics queue: the periodic breach check and rebuilding open clocks."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def check_sla_breaches() -> dict:
    """Mark new breaches and at-risk targets (every 5 minutes); returns counts, details in job.meta."""
    from portal.services import sla

    with app_context():
        breaches = sla.check_all_breaches()
        at_risk = sla.check_at_risk()
    summary = {"new_breaches": sum(len(b["breaches"]) for b in breaches), "requests": len(breaches),
               "new_at_risk": at_risk}
    record_meta(**summary, breached_request_ids=[b["request_id"] for b in breaches][:500])
    return summary


def rebuild_sla_clocks(definition_id: int | None = None, calendar_id: int | None = None) -> int:
    """Recompute open clocks after a definition or calendar changed; progress in job.meta."""
    from portal.services import sla_admin

    with app_context():
        return sla_admin.rebuild_open_clocks(
            definition_id=definition_id, calendar_id=calendar_id,
            progress=lambda done, total: record_meta(done=done, total=total))
