"""Export and report jobs: build a CSV/PDF (`exports` queue), an SLA report (`reports`), clean up old files."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def _attempt(build, export_id: int) -> dict:
    """Run one build; on an unexpected error say on the export's page whether it will be retried."""
    from rq import get_current_job

    from portal.queueing import QUEUES
    from portal.services import exports

    with app_context():
        try:
            export = build(export_id, progress=lambda done, total: record_meta(done=done, total=total))
        except Exception:
            job = get_current_job()
            retries_left = job.retries_left if job is not None and job.retries_left else 0
            if retries_left:
                policy = QUEUES[job.origin] if job.origin in QUEUES else None
                exports.retrying(export_id, policy.intervals[-1] if policy else 60)
            else:
                exports.fail(export_id, "The export could not be made because of an error on our side. "
                                        "It has been logged; try again later.")
            raise
        if export is None:
            return {"export_id": export_id, "status": "skipped"}
        summary = {"export_id": export_id, "status": export.status, "rows": export.rows_done,
                   "size": export.size_bytes}
    record_meta(**summary)
    return summary


def build_export(export_id: int) -> dict:
    """Write the CSV or PDF of a requests export; progress (rows done of total) on the row and in job.meta."""
    from portal.services import exports

    return _attempt(exports.build_export, export_id)


def build_report(export_id: int) -> dict:
    """Write the PDF of an SLA report from the trend table."""
    from portal.services import exports

    return _attempt(exports.build_report, export_id)


def purge_expired_exports() -> int:
    """Delete exports (rows and files) past their expiry; daily."""
    from portal.services import exports

    with app_context():
        count = exports.purge_expired()
    record_meta(purged=count)
    return count
