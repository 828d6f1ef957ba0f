"""Is the portal well? One probe per fact, used by every reader of it.

`/health` and `/health/ready` (portal/health.py), `flask doctor` and the admin's System status page
all ask this module, so a check is written once. Every probe is bounded: the database on a short
connection of its own (connect_timeout, statement_timeout), Redis with socket timeouts, pg_dump
with a process timeout; `/health` runs its probes side by side and answers after HEALTH_DEADLINE
whatever hangs.

One fact is written here for later readers: the last SLA check (`record_sla_check`, Redis key
SLA_CHECK_KEY), read by `last_sla_check()` (also published as a metric). The last verified backup is
read from the backup catalog (portal/services/backups.py).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from flask import current_app
from redis import Redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
SEVERITY = {OK: 0, WARN: 1, FAIL: 2}  # also `flask doctor`'s exit code

HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"

PROBE_TIMEOUT = 1.0      # seconds a Redis command may take
DB_CONNECT_TIMEOUT = 2   # seconds (libpq's smallest connect_timeout)
DB_STATEMENT_TIMEOUT_MS = 1000
DB_PROBE_TIMEOUT = 1.2   # seconds for connecting and both queries together
HEALTH_DEADLINE = 1.5    # /health answers by then whatever a probe is doing
DOCTOR_DB_TIMEOUT = 5.0  # the operator's checks may wait a little longer

SLA_CHECK_KEY = "portal:sla:last_check_at"
SLA_CHECK_STALE = timedelta(minutes=15)   # the check runs every 5 minutes
BACKUP_STALE = timedelta(hours=26)        # a daily backup, with two hours' grace
BACKUP_LOST = timedelta(days=7)
QUEUE_BACKLOG_WARN = 100                  # waiting jobs on one queue
WORKER_HEARTBEAT_GRACE = timedelta(seconds=420 + 60)  # RQ's worker_ttl + the key's extra minute
SCHEDULER_KEYS = "rq:scheduler_instance:*"  # rq-scheduler's own key, refreshed every interval
SCHEDULED_JOBS_KEY = "rq:scheduler:scheduled_jobs"
DISK_WARN = (0.10, 2 * 1024**3)           # free share, free bytes
DISK_FAIL = (0.05, 512 * 1024**2)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ago(value: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or _now()) - value).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds // 86400} days ago"


# ---------------------------------------------------------------- connections

def health_redis(url: str | None = None) -> Redis:
    """A Redis client that gives up after PROBE_TIMEOUT instead of waiting forever."""
    return Redis.from_url(url or current_app.config["REDIS_URL"], socket_connect_timeout=PROBE_TIMEOUT,
                          socket_timeout=PROBE_TIMEOUT, retry_on_timeout=False)


def _database_dsn(url: str | None = None) -> str:
    from portal import sqlalchemy_url

    return sqlalchemy_url(url or current_app.config["DATABASE_URL"]).replace("postgresql+psycopg2://",
                                                                            "postgresql://", 1)


@cache
def migration_heads() -> tuple[str, ...]:
    """The head revision(s) of the migrations this code ships (read once per process)."""
    from alembic.script import ScriptDirectory

    from portal.config import PROJECT_ROOT

    return tuple(sorted(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads()))


# ---------------------------------------------------------------- probes (facts, no judgement)

@dataclass(frozen=True)
class DatabaseProbe:
    """What one short connection to PostgreSQL found."""

    reachable: bool
    error: str | None = None
    server_version: int | None = None     # server_version_num, e.g. 160002
    revisions: tuple[str, ...] = ()       # alembic_version rows; empty when never migrated
    millis: int = 0

    @property
    def at_head(self) -> bool:
        return self.reachable and self.revisions == migration_heads()


def probe_database(url: str | None = None, timeout: float = DB_PROBE_TIMEOUT) -> DatabaseProbe:
    """Connect afresh (never the pool, which may be waiting on a dead server), ask version and revision.

    The connection is asynchronous and every wait is a select() with what is left of `timeout`, so a
    server that accepts connections but answers nothing (stopped, overloaded) costs `timeout` seconds
    and no thread is left waiting on it.
    """
    import psycopg2

    started = time.monotonic()
    deadline = started + timeout
    conn = None
    try:
        conn = psycopg2.connect(_database_dsn(url), connect_timeout=DB_CONNECT_TIMEOUT, async_=True,
                                application_name="portal-health")
        _wait(conn, deadline)
        cur = conn.cursor()
        # The timeout is set for this transaction only, not as a startup option: PgBouncer refuses
        # startup options, and a session-level SET would stay on its pooled server connection.
        cur.execute(f"BEGIN; SET LOCAL statement_timeout = {int(DB_STATEMENT_TIMEOUT_MS)}; "
                    "SELECT current_setting('server_version_num')::int, to_regclass('alembic_version') IS NOT NULL")
        _wait(conn, deadline)
        version, migrated = cur.fetchone()
        revisions: tuple[str, ...] = ()
        if migrated:
            cur.execute("SELECT version_num FROM alembic_version ORDER BY 1")
            _wait(conn, deadline)
            revisions = tuple(row[0] for row in cur.fetchall())
        cur.execute("ROLLBACK")  # ends the transaction, so a pooler can hand its connection on at once
        _wait(conn, deadline)
        return DatabaseProbe(True, None, version, revisions, _ms(started))
    except Exception as exc:  # noqa: BLE001 - any failure to connect or answer is the finding
        return DatabaseProbe(False, _first_line(exc), millis=_ms(started))
    finally:
        if conn is not None:
            conn.close()


def _wait(conn, deadline: float) -> None:
    """Drive an asynchronous psycopg2 connection until it is ready, or raise TimeoutError at `deadline`."""
    import select

    from psycopg2 import extensions

    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("PostgreSQL did not answer in time")
        if state == extensions.POLL_READ:
            select.select([conn.fileno()], [], [], remaining)
        elif state == extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], remaining)
        else:
            raise RuntimeError(f"unexpected connection state {state}")


@dataclass(frozen=True)
class RedisProbe:
    """What a bounded Redis client found: reachable, and the commands the portal needs working."""

    reachable: bool
    error: str | None = None
    advice: str | None = None
    version: str | None = None
    millis: int = 0


def probe_redis(connection: Redis, thorough: bool = False) -> RedisProbe:
    """PING; with `thorough`, also write, read and delete a key (a password, a read-only replica or
    renamed commands show here) and read the server version (INFO may be renamed: that is no fault)."""
    started = time.monotonic()
    try:
        connection.ping()
        version = None
        if thorough:
            key = f"portal:health:probe:{os.getpid()}"
            connection.set(key, "1", ex=60)
            if connection.get(key) != b"1":
                return RedisProbe(False, "a key written could not be read back",
                                  "Check that REDIS_URL points at a primary, not a replica.", millis=_ms(started))
            connection.delete(key)
            try:
                version = connection.info("server").get("redis_version")
            except ResponseError:
                version = None  # INFO renamed away (allowed by the hardening guide)
        return RedisProbe(True, None, None, version, _ms(started))
    except AuthenticationError as exc:
        if not connection.connection_pool.connection_kwargs.get("password"):  # none was sent
            advice = "Redis wants a password: add it to REDIS_URL (redis://:PASSWORD@host:6379/0)."
        else:
            advice = ("Redis refused the password: put the one from redis.conf (requirepass) in REDIS_URL "
                      "as redis://:PASSWORD@host:6379/0.")
        return RedisProbe(False, _first_line(exc), advice, millis=_ms(started))
    except ResponseError as exc:
        text = str(exc)
        if "NOAUTH" in text or "Authentication required" in text:
            advice = "Redis wants a password: add it to REDIS_URL (redis://:PASSWORD@host:6379/0)."
        elif "unknown command" in text:
            advice = ("A command the portal needs (PING, SET, GET, DEL) is renamed or disabled in redis.conf; "
                      "rename only FLUSHDB, FLUSHALL and CONFIG.")
        elif "READONLY" in text:
            advice = "REDIS_URL points at a read-only replica; point it at the primary."
        else:
            advice = "Read the Redis server log for this error."
        return RedisProbe(False, _first_line(exc), advice, millis=_ms(started))
    except RedisError as exc:
        return RedisProbe(False, _first_line(exc), "Start Redis (redis-cli ping should answer PONG) and check "
                          "REDIS_URL, host, port and firewall.", millis=_ms(started))


def live_workers(connection: Redis) -> dict[str, int]:
    """RQ workers with a live heartbeat, per queue (in the order workers serve queues)."""
    from rq import Worker

    from portal.queueing import WORKER_QUEUE_ORDER

    now = _now()
    per_queue = dict.fromkeys(WORKER_QUEUE_ORDER, 0)
    for worker in Worker.all(connection=connection):
        beat = worker.last_heartbeat
        if beat is None or now - _aware(beat) > WORKER_HEARTBEAT_GRACE:
            continue
        for name in worker.queue_names():
            if name in per_queue:
                per_queue[name] += 1
    return per_queue


def worker_count(connection: Redis) -> int:
    """How many RQ workers have a live heartbeat."""
    from rq import Worker

    now = _now()
    return sum(1 for w in Worker.all(connection=connection)
               if w.last_heartbeat is not None and now - _aware(w.last_heartbeat) <= WORKER_HEARTBEAT_GRACE)


def scheduler_alive(connection: Redis) -> bool:
    """True while an rq-scheduler process keeps its key alive (it expires interval + 10 s after the last beat)."""
    for key in connection.scan_iter(match=SCHEDULER_KEYS, count=1000):
        if not connection.hexists(key, "death"):
            return True
    return False


# ---------------------------------------------------------------- the facts written for later readers

def record_sla_check(at: datetime | None = None, connection: Redis | None = None) -> None:
    """Remember that the SLA check just ran (the job and `flask sla check` call this)."""
    connection = connection or health_redis()
    connection.set(SLA_CHECK_KEY, (at or _now()).isoformat())


def read_last_sla_check(connection: Redis) -> datetime | None:
    """When the SLA check last ran, or None if never; raises RedisError when Redis cannot be asked."""
    raw = connection.get(SLA_CHECK_KEY)
    if not raw:
        return None
    try:
        return _aware(datetime.fromisoformat(raw.decode()))
    except ValueError:
        return None


def last_sla_check() -> datetime | None:
    """When the SLA check last ran (UTC), or None when it never ran or Redis cannot be asked.

    Needs an app context. The metrics publish it as a gauge; `flask doctor` warns after 15 minutes.
    """
    try:
        return read_last_sla_check(health_redis())
    except RedisError:
        return None


def last_verified_backup() -> tuple[datetime, str] | None:
    """(when, file name) of the newest verified backup in the catalog, or None if there is none."""
    from portal.services.backups import newest_verified

    found = newest_verified()
    return (_aware(found.verified_at), found.name or "") if found is not None else None


# ---------------------------------------------------------------- /health and /health/ready

def _run_side_by_side(probes: dict[str, Callable[[], object]], deadline: float) -> dict[str, object]:
    """Run the probes in threads; a probe not done by `deadline` seconds is reported as None."""
    app = current_app._get_current_object()

    def in_context(probe):
        with app.app_context():
            return probe()

    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="health")
    futures = {name: pool.submit(in_context, probe) for name, probe in probes.items()}
    results: dict[str, object] = {}
    stop = time.monotonic() + deadline
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, stop - time.monotonic()))
        except FutureTimeout:
            results[name] = None
        except Exception:  # noqa: BLE001 - a probe that breaks counts as a failed component
            log.exception("health probe %s failed", name)
            results[name] = None
    pool.shutdown(wait=False, cancel_futures=True)  # a hung probe ends by its own timeout
    return results


def _queue_side() -> dict:
    """Redis, workers and scheduler, on one bounded connection (workers/scheduler unknown without Redis)."""
    unreachable = {"redis": UNHEALTHY, "workers": UNKNOWN, "scheduler": UNKNOWN, "per_queue": None}
    connection = health_redis()
    try:
        if not probe_redis(connection).reachable:
            return unreachable
        per_queue = live_workers(connection)
        workers = HEALTHY if per_queue and all(per_queue.values()) else UNHEALTHY
        scheduler = HEALTHY if scheduler_alive(connection) else UNHEALTHY
    except RedisError:
        return unreachable
    finally:
        connection.close()
    return {"redis": HEALTHY, "workers": workers, "scheduler": scheduler, "per_queue": per_queue}


def _redis_reachable() -> RedisProbe:
    connection = health_redis()
    try:
        return probe_redis(connection)
    finally:
        connection.close()


def health_report() -> tuple[dict, int]:
    """The guide's health JSON and its status code: 503 only when the database is unhealthy.

    Names states, never hosts, URLs or error texts (the endpoint is public).
    """
    found = _run_side_by_side({"database": probe_database, "queues": _queue_side}, HEALTH_DEADLINE)
    database = found["database"]
    queues = found["queues"] or {"redis": UNHEALTHY, "workers": UNKNOWN, "scheduler": UNKNOWN, "per_queue": None}
    components = {
        "database": HEALTHY if isinstance(database, DatabaseProbe) and database.reachable else UNHEALTHY,
        "redis": queues["redis"],
        "workers": queues["workers"],
        "scheduler": queues["scheduler"],
    }
    if components["database"] != HEALTHY:
        status, code = "unhealthy", 503
    elif all(value == HEALTHY for value in components.values()):
        status, code = "healthy", 200
    else:
        status, code = "degraded", 200
    per_queue = queues["per_queue"]
    body = {
        "status": status,
        "timestamp": _now().isoformat(timespec="seconds"),
        "components": components,
        "workers": {"alive_per_queue": per_queue} if per_queue is not None else {"alive_per_queue": None},
        "version": _version(),
        "environment": current_app.config.get("APP_ENV", "production"),
    }
    return body, code


def readiness() -> tuple[dict, int]:
    """Ready to serve: database reachable and migrated to this code's head, Redis reachable."""
    found = _run_side_by_side({"database": probe_database, "redis": _redis_reachable}, HEALTH_DEADLINE)
    database, redis = found["database"], found["redis"]
    db_ok = isinstance(database, DatabaseProbe) and database.reachable
    checks = {
        "database": "ok" if db_ok else "unreachable",
        "migrations": ("ok" if database.at_head else "not at head") if db_ok else "unknown",
        "redis": "ok" if isinstance(redis, RedisProbe) and redis.reachable else "unreachable",
    }
    failing = [name for name, value in checks.items() if value != "ok"]
    body = {"status": "ready" if not failing else "not ready", "checks": checks, "failing": failing,
            "timestamp": _now().isoformat(timespec="seconds")}
    return body, 200 if not failing else 503


def _version() -> str:
    from portal import __version__

    return __version__


# ---------------------------------------------------------------- the operator's checks

@dataclass(frozen=True)
class Check:
    """One line of `flask doctor` and one row of the System status page."""

    name: str          # stable key, for --json
    title: str
    status: str        # ok / warn / fail
    summary: str       # what was found
    action: str | None = None   # what to do, for anything not OK
    details: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "status": self.status, "summary": self.summary,
                "action": self.action, "details": list(self.details)}


def worst(checks: list[Check]) -> str:
    """The worst status among the checks (ok when there are none)."""
    return max((c.status for c in checks), key=SEVERITY.__getitem__, default=OK)


def run_checks() -> list[Check]:
    """Every check of the guide's Troubleshooting section, in the order an operator reads them.

    A check that cannot be asked (its service is down) says so rather than waiting: the database
    and Redis are probed once, and the checks that need them reuse the finding.
    """
    database = probe_database(timeout=DOCTOR_DB_TIMEOUT)
    connection = health_redis()
    try:
        redis = probe_redis(connection, thorough=True)
        checks = [
            _check_database(database),
            _check_migrations(database),
            *_check_other_databases(),
            _check_redis(redis),
        ]
        for builder in (_check_workers, _check_scheduler, _check_periodic_jobs, _check_sla_check,
                        _check_queue_depths, _check_dead_letters):
            checks.append(_guarded(builder, connection, redis))
    finally:
        connection.close()
    checks.append(_guarded(_check_sla_definitions, database))
    checks.append(_guarded(_check_backup_dir))
    checks.append(_guarded(_check_pg_dump, database))
    checks.append(_guarded(_check_disk_space))
    checks.append(_guarded(_check_verified_backup, database))
    return checks


CHECK_TITLES = {
    "database": "Database", "migrations": "Migrations", "redis": "Redis", "workers": "Workers",
    "scheduler": "Scheduler", "periodic_jobs": "Periodic jobs", "sla_check": "Last SLA check",
    "queue_depths": "Queue depths", "dead_letters": "Dead letters", "sla_definitions": "SLA definitions",
    "backup_dir": "Backup directory", "pg_dump": "pg_dump", "disk_space": "Disk space",
    "verified_backup": "Last verified backup",
    "replica": "Read replica", "direct_database": "Direct database URL",
}


def _guarded(builder: Callable[..., Check], *args) -> Check:
    """Run one check; an unexpected error becomes that check's FAIL instead of hiding the others."""
    name = builder.__name__.removeprefix("_check_")
    try:
        return builder(*args)
    except RedisError as exc:
        return Check(name, CHECK_TITLES[name], FAIL, f"Redis stopped answering: {_first_line(exc)}",
                     "Check Redis (see the Redis line above) and run the check again.")
    except Exception as exc:  # noqa: BLE001 - reported as this check's failure
        log.exception("check %s failed", name)
        return Check(name, CHECK_TITLES[name], FAIL, f"The check itself failed: {_first_line(exc)}",
                     "Read the portal's error log for the traceback.")


def _check_database(probe: DatabaseProbe) -> Check:
    if not probe.reachable:
        return Check("database", "Database", FAIL, f"Cannot reach PostgreSQL: {probe.error}",
                     "Start PostgreSQL and check DATABASE_URL (psql \"$DATABASE_URL\" -c 'SELECT 1' must work); "
                     "the portal cannot serve pages without it.")
    return Check("database", "Database", OK,
                 f"PostgreSQL {_pg_version_text(probe.server_version)} answers ({probe.millis} ms).")


def _check_other_databases() -> list[Check]:
    """DATABASE_REPLICA_URL and DATABASE_DIRECT_URL, each only when it is set."""
    checks = []
    if url := current_app.config.get("DATABASE_REPLICA_URL"):
        probe = probe_database(url, timeout=DOCTOR_DB_TIMEOUT)
        if not probe.reachable:
            checks.append(Check("replica", CHECK_TITLES["replica"], WARN, f"Cannot reach the replica: {probe.error}",
                                "Check DATABASE_REPLICA_URL and the standby. Meanwhile exports, reports and the "
                                "SLA figures read from the primary."))
        elif not probe.at_head:
            checks.append(Check("replica", CHECK_TITLES["replica"], WARN,
                                "The replica's schema is not at this code's migrations.",
                                "Is it replicating from this primary? Check DATABASE_REPLICA_URL and its lag."))
        else:
            checks.append(Check("replica", CHECK_TITLES["replica"], OK,
                                f"PostgreSQL {_pg_version_text(probe.server_version)} answers ({probe.millis} ms)."))
    if url := current_app.config.get("DATABASE_DIRECT_URL"):
        probe = probe_database(url, timeout=DOCTOR_DB_TIMEOUT)
        if probe.reachable:
            checks.append(Check("direct_database", CHECK_TITLES["direct_database"], OK,
                                f"PostgreSQL {_pg_version_text(probe.server_version)} answers ({probe.millis} ms)."))
        else:
            checks.append(Check("direct_database", CHECK_TITLES["direct_database"], FAIL,
                                f"Cannot reach DATABASE_DIRECT_URL: {probe.error}",
                                "Backups and restores connect there: point it at PostgreSQL itself (not the pooler)."))
    return checks


def _check_migrations(probe: DatabaseProbe) -> Check:
    heads = ", ".join(migration_heads())
    if not probe.reachable:
        return Check("migrations", "Migrations", FAIL, "Unknown: the database cannot be reached.",
                     "Fix the database first.")
    if not probe.revisions:
        return Check("migrations", "Migrations", FAIL, "The database has no schema yet.",
                     "Run: flask --app wsgi db upgrade")
    if not probe.at_head:
        return Check("migrations", "Migrations", FAIL,
                     f"The database is at {', '.join(probe.revisions)}; this code expects {heads}.",
                     "Run: flask --app wsgi db upgrade (after a backup), then restart web and workers.")
    return Check("migrations", "Migrations", OK, f"At head ({heads}).")


def _check_redis(probe: RedisProbe) -> Check:
    if not probe.reachable:
        return Check("redis", "Redis", FAIL, f"Redis does not work: {probe.error}",
                     f"{probe.advice} Until then jobs wait in the outbox and nothing runs in the background.")
    version = f"Redis {probe.version}" if probe.version else "Redis"
    return Check("redis", "Redis", OK, f"{version} answers PING, SET, GET and DEL ({probe.millis} ms).")


def _needs_redis(name: str, redis: RedisProbe) -> Check | None:
    if redis.reachable:
        return None
    return Check(name, CHECK_TITLES[name], FAIL, "Unknown: Redis cannot be reached.", "Fix Redis first.")


def _check_workers(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("workers", redis)) is not None:
        return skipped
    per_queue = live_workers(connection)
    details = ("live workers per queue: " + ", ".join(f"{queue} {count}" for queue, count in per_queue.items()),)
    idle = [queue for queue, count in per_queue.items() if count == 0]
    start = "Start one: flask --app wsgi jobs worker (it serves every queue; --queues to choose)."
    if len(idle) == len(per_queue):
        return Check("workers", "Workers", FAIL, "No RQ worker has a live heartbeat: no job runs.", start, details)
    if idle:
        return Check("workers", "Workers", FAIL, f"No live worker serves {', '.join(idle)}: their jobs wait.",
                     f"Start a worker for them: flask --app wsgi jobs worker --queues {','.join(idle)}", details)
    return Check("workers", "Workers", OK, f"{worker_count(connection)} live worker(s); every queue is served.",
                 None, details)


def _check_scheduler(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("scheduler", redis)) is not None:
        return skipped
    if scheduler_alive(connection):
        return Check("scheduler", "Scheduler", OK, "rq-scheduler is running (its heartbeat key is fresh).")
    return Check("scheduler", "Scheduler", FAIL,
                 "No rq-scheduler is running: periodic jobs (SLA checks, outbox relay, clean-ups) do not start.",
                 "Start exactly one: flask --app wsgi jobs scheduler")


def _check_periodic_jobs(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("periodic_jobs", redis)) is not None:
        return skipped
    from portal.services import jobs

    wanted = jobs.schedule()
    registered = {job_id: (cron, when) for job_id, cron, _func, when in jobs.periodic(connection)}
    now = _now()
    missing, overdue, details = [], [], []
    for item in wanted:
        if item.id not in registered:
            missing.append(item.id)
            details.append(f"{item.id}: not registered ({item.cron})")
            continue
        cron, when = registered[item.id]
        when = _aware(when) if when else None
        if when is not None and now - when > timedelta(minutes=2):
            overdue.append(item.id)
        stamp = f"next {when:%Y-%m-%d %H:%M} UTC" if when else "no next run"
        details.append(f"{item.id}: {cron or item.cron}, {stamp}")
    if missing:
        return Check("periodic_jobs", "Periodic jobs", FAIL,
                     f"{len(missing)} of {len(wanted)} periodic job(s) not registered: {', '.join(missing)}.",
                     "Restart the scheduler (flask --app wsgi jobs scheduler): it registers the schedule at start.",
                     tuple(details))
    if overdue:
        return Check("periodic_jobs", "Periodic jobs", WARN,
                     f"{len(overdue)} periodic job(s) are past their run time: {', '.join(overdue)}.",
                     "The scheduler is not moving them: check that it runs (line above) and read its log.",
                     tuple(details))
    return Check("periodic_jobs", "Periodic jobs", OK, f"All {len(wanted)} registered with their next run.",
                 None, tuple(details))


def _check_sla_check(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("sla_check", redis)) is not None:
        return skipped
    last = read_last_sla_check(connection)
    advice = ("Check the scheduler and the analytics queue's workers above; run it now with "
              "flask --app wsgi sla check, and look for check_sla_breaches in the job log.")
    if last is None:
        return Check("sla_check", "Last SLA check", WARN, "The SLA breach check has not run yet.", advice)
    age = _now() - last
    if age > SLA_CHECK_STALE:
        return Check("sla_check", "Last SLA check", WARN,
                     f"Last ran {_ago(last)} ({last:%Y-%m-%d %H:%M} UTC); it should run every 5 minutes.", advice)
    return Check("sla_check", "Last SLA check", OK, f"Ran {_ago(last)} ({last:%H:%M:%S} UTC).")


def _check_queue_depths(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("queue_depths", redis)) is not None:
        return skipped
    from portal.services import jobs

    counts = jobs.queue_counts(connection)
    details = tuple(f"{c.queue}: {c.queued} waiting, {c.started} running, {c.scheduled} retry later"
                    for c in counts)
    backlog = [c for c in counts if c.queued > QUEUE_BACKLOG_WARN]
    if backlog:
        names = ", ".join(f"{c.queue} ({c.queued})" for c in backlog)
        return Check("queue_depths", "Queue depths", WARN, f"Backlog over {QUEUE_BACKLOG_WARN} jobs: {names}.",
                     "Check the workers for those queues are alive and not stuck (flask jobs active); "
                     "start more: flask --app wsgi jobs worker --concurrency 4", details)
    total = sum(c.queued for c in counts)
    return Check("queue_depths", "Queue depths", OK, f"{total} job(s) waiting in all.", None, details)


def _check_dead_letters(connection: Redis, redis: RedisProbe) -> Check:
    if (skipped := _needs_redis("dead_letters", redis)) is not None:
        return skipped
    from portal.services import jobs

    failed = {c.queue: c.failed for c in jobs.queue_counts(connection) if c.failed}
    if failed:
        names = ", ".join(f"{queue} ({count})" for queue, count in failed.items())
        return Check("dead_letters", "Dead letters", WARN,
                     f"{sum(failed.values())} job(s) failed after their last retry: {names}.",
                     "Read their errors on Admin → Failed jobs (or flask jobs failed), fix the cause, "
                     "then requeue or discard them.")
    return Check("dead_letters", "Dead letters", OK, "No failed jobs waiting.")


def _check_sla_definitions(database: DatabaseProbe) -> Check:
    if not database.reachable:
        return Check("sla_definitions", "SLA definitions", FAIL, "Unknown: the database cannot be reached.",
                     "Fix the database first.")
    from sqlalchemy import select

    from portal.domain.workflow import PRIORITIES
    from portal.extensions import db
    from portal.models import Category, SlaDefinition

    categories = list(db.session.scalars(select(Category.code).where(Category.active)
                                         .order_by(Category.sort_order, Category.code)))
    covered = {(c, p) for c, p in db.session.execute(select(SlaDefinition.category, SlaDefinition.priority)
                                                     .where(SlaDefinition.is_active))}
    missing = [(c, p) for c in categories for p in PRIORITIES if (c, p) not in covered]
    total = len(categories) * len(PRIORITIES)
    if missing:
        by_category: dict[str, list[str]] = {}
        for c, p in missing:
            by_category.setdefault(c, []).append(p)
        return Check("sla_definitions", "SLA definitions", WARN,
                     f"{len(missing)} of {total} category/priority pairs have no active SLA definition.",
                     "Requests raised in those pairs get no SLA clock: add definitions on Admin → SLA setup "
                     "(or POST /api/v1/sla/definitions).",
                     tuple(f"{c}: no SLA for {', '.join(ps)}" for c, ps in by_category.items()))
    return Check("sla_definitions", "SLA definitions", OK,
                 f"Every active category and priority has an active definition ({total} pairs).")


def _check_backup_dir() -> Check:
    path = Path(current_app.config["BACKUP_DIR"])
    if path.is_dir():
        if _writable(path):
            return Check("backup_dir", "Backup directory", OK, f"{path} is writable.")
        return Check("backup_dir", "Backup directory", FAIL, f"{path} exists but the portal cannot write to it.",
                     f"Give the portal's user write access: chown <portal user> {path} && chmod 750 {path}")
    if path.exists():
        return Check("backup_dir", "Backup directory", FAIL, f"{path} is not a directory.",
                     "Point BACKUP_DIR at a directory.")
    parent = _existing_parent(path)
    if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("backup_dir", "Backup directory", OK,
                     f"{path} does not exist yet; the first backup creates it (its parent {parent} is writable).")
    return Check("backup_dir", "Backup directory", FAIL, f"{path} does not exist and cannot be created.",
                 f"Create it for the portal's user: mkdir -p {path} && chown <portal user> {path}")


def _writable(path: Path) -> bool:
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            return True
    except OSError:
        return False


def _existing_parent(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def pg_dump_candidates(server_major: int | None = None) -> list[str]:
    """Where pg_dump may be: the PG_DUMP setting alone when set; else PATH, the distribution's
    /usr/lib/postgresql/<major>/bin, and the embedded PostgreSQL's (development and tests)."""
    configured = current_app.config.get("PG_DUMP")
    if configured:
        return [configured]
    found = [shutil.which("pg_dump")]
    if server_major:
        found.append(f"/usr/lib/postgresql/{server_major}/bin/pg_dump")
    try:
        from portal.embedded import pg_bin_dir

        found.append(str(pg_bin_dir() / "pg_dump"))
    except ImportError:  # production: pgserver is not installed
        pass
    unique = []
    for path in found:
        if path and path not in unique and os.access(path, os.X_OK):
            unique.append(path)
    return unique


def find_pg_dump(server_major: int | None = None) -> tuple[str, int | None] | None:
    """(path, major version) of the pg_dump to use: one of the server's major version when there is
    one, else the first found; None when there is none. The backup job uses the same choice."""
    first = None
    for path in pg_dump_candidates(server_major):
        major = pg_dump_major(path)
        if major is None:
            continue
        if server_major is None or major == server_major:
            return path, major
        first = first or (path, major)
    return first


def pg_dump_major(binary: str) -> int | None:
    """The major version `pg_dump --version` reports (None when it does not run)."""
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s*(\d+)", result.stdout) or re.search(r"(\d+)\.\d+", result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else None


def _check_pg_dump(database: DatabaseProbe) -> Check:
    server = database.server_version // 10000 if database.reachable and database.server_version else None
    found = find_pg_dump(server)
    if found is None:
        where = current_app.config.get("PG_DUMP") or "PATH, /usr/lib/postgresql/*/bin and the embedded server"
        return Check("pg_dump", "pg_dump", FAIL, f"No working pg_dump found (looked in {where}).",
                     f"Install the PostgreSQL client of the server's major version (apt-get install "
                     f"postgresql-client-{server or 16}) or set PG_DUMP to its path.")
    binary, major = found
    if server is None:
        return Check("pg_dump", "pg_dump", WARN, f"{binary} is version {major}; the server's version is unknown.",
                     "Fix the database, then run the check again.")
    if major < server:
        return Check("pg_dump", "pg_dump", FAIL,
                     f"{binary} is version {major}, older than the server ({server}): it refuses to dump it.",
                     f"Install postgresql-client-{server} or set PG_DUMP to a pg_dump {server}.")
    if major > server:
        return Check("pg_dump", "pg_dump", WARN,
                     f"{binary} is version {major}, the server {server}: dumps work, but may not load into "
                     f"a PostgreSQL {server}.",
                     f"Prefer pg_dump {server} (set PG_DUMP) so a backup restores on the same version.")
    return Check("pg_dump", "pg_dump", OK, f"{binary} is version {major}, as the server.")


def _check_disk_space() -> Check:
    config = current_app.config
    places = {"INSTANCE_DIR": config["INSTANCE_DIR"], "UPLOAD_DIR": config["UPLOAD_DIR"],
              "EXPORT_DIR": config["EXPORT_DIR"], "BACKUP_DIR": config["BACKUP_DIR"]}
    by_device: dict[int, tuple[list[str], Path]] = {}
    for setting, value in places.items():
        existing = _existing_parent(Path(value))
        if existing is None:
            continue
        names, _ = by_device.setdefault(existing.stat().st_dev, ([], existing))
        names.append(setting)
    worst_status, details, short = OK, [], []
    for names, path in by_device.values():
        usage = shutil.disk_usage(path)
        status = judge_disk(usage.free, usage.total)
        share = usage.free / usage.total if usage.total else 0
        line = f"{', '.join(names)}: {_size(usage.free)} free of {_size(usage.total)} ({share:.0%})"
        details.append(line)
        if status != OK:
            short.append(line)
        if SEVERITY[status] > SEVERITY[worst_status]:
            worst_status = status
    if worst_status == OK:
        return Check("disk_space", "Disk space", OK, "Enough free space for uploads, exports and backups.",
                     None, tuple(details))
    return Check("disk_space", "Disk space", worst_status, "Low on space: " + "; ".join(short) + ".",
                 "Free space (old exports, old backups beyond the retention period) or grow the volume; "
                 "a full disk stops uploads, exports and backups.", tuple(details))


def judge_disk(free: int, total: int) -> str:
    """FAIL under 5% or 512 MiB free, WARN under 10% or 2 GiB, else OK."""
    share = free / total if total else 0
    if share < DISK_FAIL[0] or free < DISK_FAIL[1]:
        return FAIL
    if share < DISK_WARN[0] or free < DISK_WARN[1]:
        return WARN
    return OK


def _check_verified_backup(database: DatabaseProbe) -> Check:
    if not database.reachable:
        return Check("verified_backup", "Last verified backup", FAIL, "Unknown: the database cannot be reached.",
                     "Fix the database first.")
    found = last_verified_backup()
    if found is None:
        return Check("verified_backup", "Last verified backup", WARN, "No verified backup yet.",
                     "Set BACKUP_PASSPHRASE and run one now (flask --app wsgi backup create, or Admin → Backups); "
                     "the scheduler makes one every night. Until then a lost database cannot be restored.")
    when, name = found
    age = _now() - when
    summary = f"{name or 'A backup'} verified {_ago(when)} ({when:%Y-%m-%d %H:%M} UTC)."
    if age > BACKUP_LOST:
        return Check("verified_backup", "Last verified backup", FAIL, summary,
                     "Backups have stopped for a week: read the backup job's log and run one by hand now.")
    if age > BACKUP_STALE:
        return Check("verified_backup", "Last verified backup", WARN, summary,
                     "The daily backup is late: check the backup job (flask jobs failed --queue backup).")
    return Check("verified_backup", "Last verified backup", OK, summary)


# ---------------------------------------------------------------- small helpers

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _pg_version_text(num: int | None) -> str:
    if not num:
        return "(version unknown)"
    return f"{num // 10000}.{num % 10000}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
