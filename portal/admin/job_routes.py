"""The admin's "Failed jobs" page: the dead-letter queue, with requeue and discard (one or all)."""

from __future__ import annotations

from flask import render_template, request, url_for
from redis.exceptions import RedisError

from portal.admin import bp
from portal.forms import EmptyForm
from portal.htmx import form_done, form_refused, is_htmx
from portal.policy import permission_required
from portal.queueing import QUEUES
from portal.services import jobs
from portal.services.errors import Conflict, ServiceError

JOBS = "admin/_jobs.html"
QUEUE_UNREACHABLE = "The job queue (Redis) cannot be reached right now; try again in a moment."


def _queue_filter() -> str | None:
    """The queue the page shows (from the query string or the posted form); None for all."""
    name = (request.values.get("queue") or "").strip()
    return name if name in QUEUES else None


def _context() -> dict:
    queue = _queue_filter()
    try:
        return {"queue": queue, "queues": list(QUEUES), "counts": jobs.queue_counts(),
                "failed": jobs.jobs("failed", queue, limit=200), "unreachable": False,
                "action_form": EmptyForm(formdata=None)}
    except RedisError:
        return {"queue": queue, "queues": list(QUEUES), "counts": [], "failed": [], "unreachable": True,
                "action_form": EmptyForm(formdata=None)}


def _back() -> str:
    queue = _queue_filter()
    return url_for("admin.failed_jobs", **({"queue": queue} if queue else {}))


@bp.get("/jobs")
@permission_required("jobs.manage")
def failed_jobs():
    """Failed jobs by queue, with their tracebacks; the queue counts above them."""
    return render_template(JOBS if is_htmx() else "admin/jobs.html", **_context())


def _act(action, job_id: str | None, done: str):
    try:
        if not EmptyForm().validate_on_submit():
            raise ServiceError("The form expired; reload the page and try again.")
        count = action(job_id, _queue_filter())
        if job_id is not None and count == 0:
            raise Conflict("That job is no longer in the failed list (someone may have dealt with it).")
    except ServiceError as exc:
        return form_refused(exc, _back(), JOBS, _context())
    except RedisError:
        return form_refused(ServiceError(QUEUE_UNREACHABLE), _back(), JOBS, _context())
    return form_done(done.format(count=count), _back(), JOBS, _context())


@bp.post("/jobs/<job_id>/requeue")
@permission_required("jobs.manage")
def requeue_job(job_id: str):
    """Send one failed job again."""
    return _act(jobs.requeue_failed, job_id, "The job is back on its queue.")


@bp.post("/jobs/<job_id>/discard")
@permission_required("jobs.manage")
def discard_job(job_id: str):
    """Delete one failed job for good."""
    return _act(jobs.discard_failed, job_id, "The job was discarded.")


@bp.post("/jobs/requeue-all")
@permission_required("jobs.manage")
def requeue_all_jobs():
    """Send every failed job (of the queue shown) again."""
    return _act(jobs.requeue_failed, None, "{count} job(s) are back on their queues.")


@bp.post("/jobs/discard-all")
@permission_required("jobs.manage")
def discard_all_jobs():
    """Delete every failed job (of the queue shown) for good."""
    return _act(jobs.discard_failed, None, "{count} job(s) were discarded.")
