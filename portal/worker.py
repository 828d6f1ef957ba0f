"""The portal's RQ worker: every job logged, timed, counted, and bound to its correlation id.

`flask jobs worker` runs `PortalWorker`, alone or as the worker class of RQ's worker pool, so
every job gets the same treatment without per-job code:
- a start line and an end line (duration and outcome: finished, failed-will-retry, failed-final)
  on the `portal.jobs` logger, each with the correlation id of the request that enqueued the job
  (job.meta["correlation_id"]; a job without one is given its own);
- while it runs, that correlation id is bound with `set_request_context`, so the audit rows the
  job writes carry it, and its job id with `portal.logs.job_running`, so every line logged about
  it (RQ's own `rq.worker` lines too, typed `job`) carries `job_id`;
- counts by task name and outcome and a duration histogram in Redis (`services/job_metrics.py`),
  shared by every worker process;
- `dead_letter(job)` once when a job fails for good (no retries left, now in the failed registry).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid

from redis.exceptions import RedisError
from rq import Worker
from rq.job import Job
from rq.queue import Queue

from portal.logs import job_running
from portal.observability import RequestContext, set_request_context
from portal.services import job_metrics

log = logging.getLogger("portal.jobs")


def ensure_job_log_handler() -> None:
    """Send job lines to stderr when nothing else has configured logging (the JSON logs come later)."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def job_correlation_id(job: Job) -> str:
    """The correlation id the job carries; one is given (and saved) to a job that has none."""
    meta = job.meta if job.meta is not None else {}
    cid = meta.get("correlation_id")
    if not cid:
        cid = f"job-{uuid.uuid4()}"
        job.meta = {**meta, "correlation_id": cid}
        try:
            job.save_meta()
        except RedisError:  # the lines and the audit rows still carry it
            pass
    return cid


def _fields(job: Job, queue: str, cid: str, **more) -> dict:
    """Structured fields of a job line, for a JSON formatter."""
    return {"type": "job", "job_id": job.id, "task_name": job.func_name, "queue": queue,
            "correlation_id": cid, **more}


def dead_letter(job: Job) -> None:
    """A job failed after its last retry and now waits in the failed registry: say so and count it."""
    cid = (job.meta or {}).get("correlation_id")
    result = job.latest_result()
    error = (result.exc_string if result else None) or ""
    reason = error.strip().splitlines()[-1] if error.strip() else "unknown error"
    log.error("dead letter: job %s %s on %s failed after its last retry: %s (correlation %s)",
              job.id, job.func_name, job.origin, reason, cid,
              extra=_fields(job, job.origin, cid, job_event="dead_letter", error=reason))
    try:
        job_metrics.record_dead_letter(job.connection, job.origin)
    except RedisError:
        log.warning("could not count the dead letter %s (Redis unreachable)", job.id)
    failed_at = result.created_at.isoformat() if result and result.created_at else None
    _mail_admins(job, error or reason, cid, failed_at)


def _mail_admins(job: Job, error: str, cid: str | None, failed_at: str | None) -> None:
    """Write the admins' dead-letter mail (once per failure; the email queue sends it)."""
    from jobs._context import app_context
    from portal.extensions import db
    from portal.services import notifications

    try:
        with app_context():
            notifications.dead_letter(job.id, job.func_name, job.origin, error, cid, failed_at)
            db.session.remove()
            # This may run in the worker's main process, which forks each job's process: leave the
            # children no database connections to share.
            db.engine.dispose()
    except Exception:  # noqa: BLE001 - the dead letter is logged and kept whatever happens to its mail
        log.exception("could not write the dead-letter mail for job %s", job.id)


class PortalWorker(Worker):
    """RQ's forking worker with start/end lines, correlation ids, counters and dead letters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ensure_job_log_handler()
        self._job_clock: tuple[str, float] | None = None

    def execute_job(self, job: Job, queue: Queue):
        """Runs in the worker itself: start the clock here too, for failures seen only by the parent."""
        self._job_clock = (job.id, time.monotonic())
        with job_running(job.id):  # RQ's own lines about this job (a killed horse, a stop) carry its id
            return super().execute_job(job, queue)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """Runs in the work horse: bind the correlation id, log the start, run the job."""
        cid = job_correlation_id(job)
        set_request_context(RequestContext(correlation_id=cid))
        self._job_clock = (job.id, time.monotonic())
        log.info("job started: %s %s on %s (correlation %s)", job.id, job.func_name, queue.name, cid,
                 extra=_fields(job, queue.name, cid, job_event="start"))
        try:
            with job_running(job.id):
                return super().perform_job(job, queue)
        finally:
            set_request_context(RequestContext())

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry):
        super().handle_job_success(job, queue, started_job_registry)
        self._job_ended(job, queue.name, job_metrics.FINISHED)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry=None, exc_string=""):
        # The same test RQ makes inside, taken before it spends a retry.
        stopped = self._stopped_job_id == job.id
        will_retry = job.should_retry and not stopped
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)
        if stopped:
            outcome = job_metrics.STOPPED
        else:
            outcome = job_metrics.FAILED_WILL_RETRY if will_retry else job_metrics.FAILED_FINAL
        self._job_ended(job, queue.name, outcome, exc_string)
        if outcome == job_metrics.FAILED_FINAL:
            dead_letter(job)

    def _seconds(self, job: Job) -> float:
        if self._job_clock and self._job_clock[0] == job.id:
            return time.monotonic() - self._job_clock[1]
        if job.started_at and job.ended_at:
            return (job.ended_at - job.started_at).total_seconds()
        return 0.0

    def _job_ended(self, job: Job, queue: str, outcome: str, exc_string: str = "") -> None:
        """The end line and the counters of one run."""
        seconds = self._seconds(job)
        self._job_clock = None
        if not (job.meta or {}).get("correlation_id"):
            job.get_meta(refresh=True)  # a failure seen by the parent: the horse may have given it one
        cid = job_correlation_id(job)
        error = exc_string.strip().splitlines()[-1] if exc_string.strip() else None
        level = logging.INFO if outcome == job_metrics.FINISHED else logging.WARNING
        log.log(level, "job %s: %s %s on %s in %.3f s%s (correlation %s)", outcome, job.id, job.func_name, queue,
                seconds, f": {error}" if error else "", cid,
                extra=_fields(job, queue, cid, job_event="end", outcome=outcome,
                              duration_ms=round(seconds * 1000, 1), error=error))
        try:
            job_metrics.record_run(self.connection, job.func_name, outcome, seconds)
        except RedisError:
            log.warning("could not count job %s (Redis unreachable)", job.id)
