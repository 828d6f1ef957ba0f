"""Housekeeping jobs on the default queue."""

from __future__ import annotations

from rq import get_current_job

from jobs._context import app_context


def purge_expired_tokens() -> int:
    """Delete API tokens that expired over a day ago; records the count in job.meta."""
    from portal.services.users import purge_expired_tokens as purge

    with app_context():
        count = purge()
    job = get_current_job()
    if job is not None:
        job.meta["purged"] = count
        job.save_meta()
    return count
