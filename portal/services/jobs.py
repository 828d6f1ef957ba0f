"""What the job queues hold, and the operator's actions on them (the CLI today, the admin page next).

RQ keeps a job in one place at a time: waiting on its queue ("reserved", in Celery's words),
running (the started registry, "active"), waiting for a time (the scheduled registry: delayed
retries), or failed after its last retry (the failed registry: our dead letters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from portal.queueing import QUEUES, SCHEDULE, WORKER_QUEUE_ORDER, ScheduledJob, get_queue, redis_connection
from portal.services import job_metrics
from portal.services.job_metrics import DurationHistogram

PLACES = ("queued", "started", "scheduled", "failed")


@dataclass(frozen=True)
class QueueCounts:
    """How many jobs of one queue are in each place."""

    queue: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass(frozen=True)
class JobInfo:
    """One job as an operator reads it."""

    id: str
    queue: str
    func: str
    status: str
    enqueued_at: datetime | None
    ended_at: datetime | None
    error: str | None           # the exception's last line, for failed jobs
    correlation_id: str | None
    traceback: str | None = None


@dataclass(frozen=True)
class JobStats:
    """What the metrics issue publishes about jobs, read in one go (from any process).

    `jobs_total` and `job_duration_seconds` are counters every worker process adds to in Redis
    (`services/job_metrics.py`); `queue_depth` (waiting jobs) and `dead_letter_jobs` (the failed
    registry's size) are read from RQ now. `dead_letters_total` counts jobs that ever failed for good.
    """

    jobs_total: dict[tuple[str, str], int]          # (task name, outcome) -> runs
    job_duration_seconds: dict[str, DurationHistogram]  # task name -> cumulative buckets, sum, count
    queue_depth: dict[str, int]
    dead_letter_jobs: dict[str, int]
    dead_letters_total: dict[str, int]


def job_stats(connection: Redis | None = None) -> JobStats:
    """Job counts and durations by task and outcome, queue depth and failed-registry size per queue."""
    connection = connection or redis_connection()
    counts = queue_counts(connection)
    dead = job_metrics.dead_letters(connection)
    return JobStats(jobs_total=job_metrics.runs(connection),
                    job_duration_seconds=job_metrics.durations(connection),
                    queue_depth={row.queue: row.queued for row in counts},
                    dead_letter_jobs={row.queue: row.failed for row in counts},
                    dead_letters_total={row.queue: dead.get(row.queue, 0) for row in counts})


def _queues(queue: str | None) -> list[str]:
    if queue is None:
        return list(WORKER_QUEUE_ORDER)
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}. Known: {', '.join(QUEUES)}.")
    return [queue]


def _registry(place: str, name: str, connection: Redis):
    queue = get_queue(name, connection)
    return {"started": StartedJobRegistry, "scheduled": ScheduledJobRegistry,
            "failed": FailedJobRegistry}[place](queue=queue)


def queue_counts(connection: Redis | None = None) -> list[QueueCounts]:
    """Jobs per queue and place, in the order workers serve the queues."""
    connection = connection or redis_connection()
    return [QueueCounts(name, get_queue(name, connection).count,
                        *(_registry(place, name, connection).count for place in PLACES[1:]))
            for name in WORKER_QUEUE_ORDER]


def job_ids(place: str, queue: str | None = None, connection: Redis | None = None) -> list[tuple[str, str]]:
    """(queue, job id) of the jobs in one place, oldest first."""
    if place not in PLACES:
        raise ValueError(f"Unknown place {place!r}. Known: {', '.join(PLACES)}.")
    connection = connection or redis_connection()
    found = []
    for name in _queues(queue):
        ids = get_queue(name, connection).job_ids if place == "queued" else \
            _registry(place, name, connection).get_job_ids()
        found.extend((name, job_id) for job_id in ids)
    return found


def jobs(place: str, queue: str | None = None, limit: int = 100, connection: Redis | None = None) -> list[JobInfo]:
    """The jobs in one place (at most `limit`), with what an operator needs to judge them."""
    connection = connection or redis_connection()
    out = []
    for name, job_id in job_ids(place, queue, connection)[:limit]:
        job = Job.fetch(job_id, connection=connection) if Job.exists(job_id, connection=connection) else None
        if job is None:
            continue
        trace = error = None
        if place == "failed":
            result = job.latest_result()
            trace = (result.exc_string if result else job.exc_info) or None
            error = trace.strip().splitlines()[-1] if trace else None
        out.append(JobInfo(job.id, name, job.func_name, str(job.get_status()), job.enqueued_at, job.ended_at,
                           error, (job.meta or {}).get("correlation_id"), trace))
    return out


def _each_failed(job_id: str | None, queue: str | None, connection: Redis | None, act) -> int:
    """Apply `act(registry, job_id)` to one failed job (or all of a queue, or all); returns how many."""
    connection = connection or redis_connection()
    count = 0
    for name, found in job_ids("failed", queue, connection):
        if job_id is None or found == job_id:
            act(_registry("failed", name, connection), found)
            count += 1
    return count


def requeue_failed(job_id: str | None = None, queue: str | None = None, connection: Redis | None = None) -> int:
    """Put one failed job (or all of a queue, or all) back on its queue; returns how many."""
    return _each_failed(job_id, queue, connection, lambda registry, found: registry.requeue(found))


def discard_failed(job_id: str | None = None, queue: str | None = None, connection: Redis | None = None) -> int:
    """Delete one failed job (or all of a queue, or all) for good; returns how many."""
    return _each_failed(job_id, queue, connection,
                        lambda registry, found: registry.remove(found, delete_job=True))


def purge(queue: str | None = None, connection: Redis | None = None) -> int:
    """Delete the jobs waiting on a queue (or on every queue); returns how many."""
    connection = connection or redis_connection()
    count = 0
    for name in _queues(queue):
        q = get_queue(name, connection)
        count += q.count
        q.empty()
    return count


def periodic(connection: Redis | None = None) -> list[tuple[str, str, str, datetime | None]]:
    """The scheduler's periodic entries: (id, cron line, function, next run)."""
    import warnings

    from rq_scheduler import Scheduler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scheduler = Scheduler(connection=connection or redis_connection())
        return [(job.id, job.meta.get("cron_string", ""), job.func_name, when)
                for job, when in scheduler.get_jobs(with_times=True)]


def schedule() -> list[ScheduledJob]:
    """The periodic jobs with their times: SCHEDULE, each cron line replaceable from the settings.

    `SCHEDULE_<ID>` (the id upper-cased, dashes as underscores, e.g. SCHEDULE_CHECK_SLA_BREACHES)
    replaces a job's cron line (UTC); a line that is not a valid cron expression is refused.
    """
    from dataclasses import replace

    from crontab import CronTab
    from flask import current_app

    overrides = current_app.config.get("SCHEDULE_OVERRIDES", {})
    entries = []
    for item in SCHEDULE:
        cron = overrides.get(item.id, item.cron)
        try:
            CronTab(cron)
        except ValueError as exc:
            raise ValueError(f"{item.id}: {cron!r} is not a cron line ({exc}).") from exc
        entries.append(replace(item, cron=cron))
    return entries


def register_schedule(scheduler, entries: list[ScheduledJob]) -> list[ScheduledJob]:
    """Put the periodic jobs into rq-scheduler, replacing our earlier entries: a restart never doubles one."""
    ours = {item.id for item in SCHEDULE}
    for job in scheduler.get_jobs():
        if job.id in ours:
            scheduler.cancel(job)
    for item in entries:
        scheduler.cron(item.cron, func=item.func, queue_name=item.queue, id=item.id,
                       description=item.description, use_local_timezone=False)
    return entries
