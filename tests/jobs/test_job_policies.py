"""Every job function of jobs/ runs on its stated queue with that queue's stated retry policy."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import jobs
from portal.queueing import JOB_QUEUES, QUEUES, SCHEDULE, enqueue, push, queue_for

# The table: retries and, where it states them, the waits between attempts (seconds).
STATED = {
    "email": (3, (60, 120, 240)),
    "reports": (3, (300,)),
    "exports": (2, (300,)),
    "analytics": (1, None),
    "backup": (2, (300,)),
    "default": (3, None),
}


def _job_functions() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(jobs.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"jobs.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                found.add(f"jobs.{info.name}.{name}")
    return found


def test_every_job_function_has_a_queue():
    assert _job_functions() == set(JOB_QUEUES)
    assert {e.func for e in SCHEDULE} <= set(JOB_QUEUES)


def test_every_queue_has_the_stated_retry_policy():
    for name, (retries, waits) in STATED.items():
        assert QUEUES[name].max_retries == retries, name
        if waits is not None:
            assert QUEUES[name].intervals == waits, name


@pytest.mark.parametrize("func", sorted(JOB_QUEUES))
def test_a_pushed_job_lands_on_its_queue_with_its_policy(ctx, func):
    job = push(func)  # only queued: no worker runs it here
    policy = QUEUES[JOB_QUEUES[func]]
    assert job.origin == policy.name
    assert job.retries_left == (policy.max_retries or None)
    if policy.max_retries:
        stated = STATED[policy.name][1] or policy.intervals
        assert job.retry_intervals == list(stated)


def test_a_job_asked_onto_another_queue_is_refused_before_anything_is_written(ctx):
    with pytest.raises(ValueError, match="runs on the 'email' queue, not 'exports'"):
        enqueue("jobs.email.deliver", 1, queue="exports")
    with pytest.raises(ValueError, match="unknown queue"):
        queue_for("tests.jobs.sample_jobs.nap", "nope")
    assert queue_for("tests.jobs.sample_jobs.nap") == "default"
