"""Job counters kept in Redis, so that every worker process adds to one set (the web process reads them).

Written by the worker (`portal/worker.py`) after each run; read by `services.jobs.job_stats()`,
which the metrics issue publishes as `jobs_total{task_name,status}` and
`job_duration_seconds{task_name}`. Counters only grow; they are never expired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis import Redis

# A job run ends in one of these; the same words appear in the job log lines.
FINISHED = "finished"
FAILED_WILL_RETRY = "failed-will-retry"
FAILED_FINAL = "failed-final"      # no retries left: the job is a dead letter
STOPPED = "stopped"                # an operator stopped it
OUTCOMES = (FINISHED, FAILED_WILL_RETRY, FAILED_FINAL, STOPPED)

# Upper bounds in seconds (Prometheus' default buckets, then up to the longest job timeout, an hour).
JOB_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, math.inf)

PREFIX = "portal:jobstats:"
RUNS_KEY = PREFIX + "runs"                 # hash "task|outcome" -> count
TASKS_KEY = PREFIX + "tasks"               # set of task names that have a duration histogram
DEAD_LETTERS_KEY = PREFIX + "dead_letters"  # hash queue -> dead letters since the counters began
_SEP = "|"


def _duration_key(task_name: str) -> str:
    return PREFIX + "duration:" + task_name


def _bucket_field(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


@dataclass(frozen=True)
class DurationHistogram:
    """Run times of one task: cumulative (upper bound, count) pairs as Prometheus reads them."""

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


def record_run(connection: Redis, task_name: str, outcome: str, seconds: float) -> None:
    """Count one run of `task_name` ending in `outcome`, and its duration, in one round trip."""
    bound = next(b for b in JOB_DURATION_BUCKETS if seconds <= b)
    key = _duration_key(task_name)
    with connection.pipeline(transaction=True) as pipe:
        pipe.hincrby(RUNS_KEY, f"{task_name}{_SEP}{outcome}", 1)
        pipe.sadd(TASKS_KEY, task_name)
        pipe.hincrby(key, _bucket_field(bound), 1)
        pipe.hincrby(key, "count", 1)
        pipe.hincrbyfloat(key, "sum", max(seconds, 0.0))
        pipe.execute()


def record_dead_letter(connection: Redis, queue: str) -> None:
    """Count one job that failed for good on `queue`."""
    connection.hincrby(DEAD_LETTERS_KEY, queue, 1)


def runs(connection: Redis) -> dict[tuple[str, str], int]:
    """(task name, outcome) -> how many runs ended so."""
    out = {}
    for field, value in connection.hgetall(RUNS_KEY).items():
        task, _, outcome = field.decode().rpartition(_SEP)
        out[(task, outcome)] = int(value)
    return out


def durations(connection: Redis) -> dict[str, DurationHistogram]:
    """Task name -> its duration histogram."""
    tasks = sorted(t.decode() for t in connection.smembers(TASKS_KEY))
    with connection.pipeline(transaction=False) as pipe:
        for task in tasks:
            pipe.hgetall(_duration_key(task))
        raw = pipe.execute()
    out = {}
    for task, fields in zip(tasks, raw, strict=True):
        fields = {k.decode(): v for k, v in fields.items()}
        total, buckets = 0, []
        for bound in JOB_DURATION_BUCKETS:
            total += int(fields.get(_bucket_field(bound), 0))
            buckets.append((bound, total))
        out[task] = DurationHistogram(tuple(buckets), float(fields.get("sum", 0)), int(fields.get("count", 0)))
    return out


def dead_letters(connection: Redis) -> dict[str, int]:
    """Queue -> jobs that failed for good there since the counters began."""
    return {k.decode(): int(v) for k, v in connection.hgetall(DEAD_LETTERS_KEY).items()}
