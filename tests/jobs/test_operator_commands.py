"""The operator's job commands (`flask jobs ...`) and the worker pool, on a real Redis and real workers."""

from __future__ import annotations

import subprocess

from rq import Queue
from rq.job import Job

from portal.models._time import utcnow
from portal.queueing import push, redis_connection
from tests.jobs.test_worker import ROOT, _env, _flask


def _fail_once_and_for_all(queue: str = "default") -> Job:
    """A job that failed after its retries: no retries, so one burst run sends it to the failed registry."""
    job = push("tests.jobs.sample_jobs.fail", "printer on fire", queue=queue)
    job.retries_left = 0
    job.save()
    return job


def test_pool_of_two_workers_runs_every_job_in_two_processes(app, ctx):
    jobs = [push("tests.jobs.sample_jobs.nap", 0.6, queue="default") for _ in range(4)]
    result = subprocess.run(_flask("jobs", "worker", "--queues", "default", "--concurrency", "2", "--burst"),
                            cwd=ROOT, env=_env(app), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    connection = redis_connection()
    fetched = [Job.fetch(j.id, connection=connection) for j in jobs]
    assert [j.get_status() for j in fetched] == ["finished"] * 4
    assert len({j.worker_name for j in fetched}) == 2  # the pool's two workers shared the work


def test_queues_reserved_failed_requeue_and_purge(app, ctx, runner):
    push("tests.jobs.sample_jobs.nap", 0, queue="email")
    push("tests.jobs.sample_jobs.nap", 0, queue="email")
    failed = _fail_once_and_for_all()
    assert subprocess.run(_flask("jobs", "worker", "--queues", "default", "--burst"), cwd=ROOT, env=_env(app),
                          capture_output=True, text=True, timeout=120).returncode == 0

    queues = runner.invoke(args=["jobs", "queues"])
    assert queues.exit_code == 0
    rows = {line.split()[0]: line.split()[1:] for line in queues.output.splitlines()[1:]}
    assert rows["email"] == ["2", "0", "0", "0"] and rows["default"] == ["0", "0", "0", "1"]

    reserved = runner.invoke(args=["jobs", "reserved", "--queue", "email"])
    assert "2 queued job(s) on email" in reserved.output and "tests.jobs.sample_jobs.nap" in reserved.output

    listed = runner.invoke(args=["jobs", "failed"])
    assert failed.id in listed.output and "RuntimeError: printer on fire" in listed.output

    assert runner.invoke(args=["jobs", "requeue"]).exit_code != 0  # neither an id nor --all
    assert "No failed job nope" in runner.invoke(args=["jobs", "requeue", "nope"]).output
    requeued = runner.invoke(args=["jobs", "requeue", failed.id])
    assert requeued.exit_code == 0 and "Requeued 1 job(s)." in requeued.output
    assert failed.id in Queue("default", connection=redis_connection()).job_ids

    refused = runner.invoke(args=["jobs", "purge", "--queue", "email"], input="n\n")
    assert refused.exit_code != 0 and Queue("email", connection=redis_connection()).count == 2
    purged = runner.invoke(args=["jobs", "purge", "--queue", "email", "--yes"])
    assert "Deleted 2 waiting job(s) from queue email." in purged.output
    assert Queue("email", connection=redis_connection()).count == 0
    assert "Unknown queue 'nope'" in runner.invoke(args=["jobs", "purge", "--queue", "nope", "--yes"]).output


def test_scheduled_lists_the_periodic_jobs(app, ctx, runner):
    from rq_scheduler import Scheduler

    from portal.queueing import SCHEDULE

    scheduler = Scheduler(connection=redis_connection())
    for item in SCHEDULE:
        scheduler.cron(item.cron, func=item.func, queue_name=item.queue, id=item.id, use_local_timezone=False)
    output = runner.invoke(args=["jobs", "scheduled"]).output
    for item in SCHEDULE:
        assert item.id in output and item.cron in output and item.func in output


def test_a_worker_killed_mid_job_leaves_a_job_that_is_retried(app, ctx, tmp_path):
    import os
    import signal
    import time

    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    marker = tmp_path / "started"
    job = push("tests.jobs.sample_jobs.stall_first_time", str(marker), queue="default")
    worker = subprocess.Popen(_flask("jobs", "worker", "--queues", "default"), cwd=ROOT, env=_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the job never started"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, mid-job
        worker.wait(timeout=30)
    connection = redis_connection()
    registry = StartedJobRegistry(queue=Queue("default", connection=connection))
    assert job.id in registry.get_job_ids(cleanup=False)

    # Another worker's routine clean-up, once the dead worker's hold on the job has expired.
    registry.cleanup(timestamp=time.time() + 24 * 3600)
    job = Job.fetch(job.id, connection=connection)
    assert job.retries_left == 2  # one of the default queue's three retries spent
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=connection))
    wait = (scheduled.get_scheduled_time(job.id) - utcnow()).total_seconds()
    assert 30 < wait <= 60  # the default queue's retry interval, counted from the clean-up
    # The retry waits its interval (60 s on this queue); bring that moment forward, as time would.
    assert scheduled.get_jobs_to_schedule(timestamp=int(time.time()) + 3600) == [job.id]
    scheduled.remove(job.id)
    Queue("default", connection=connection).enqueue_job(job)

    result = subprocess.run(_flask("jobs", "worker", "--queues", "default", "--burst"), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    job = Job.fetch(job.id, connection=connection)
    assert (job.get_status(), job.return_value()) == ("finished", "finished on a retry")


def test_schedule_times_come_from_the_settings_and_bad_lines_are_refused(app, ctx):
    import pytest

    from portal.services import jobs

    app.config["SCHEDULE_OVERRIDES"] = {"check-sla-breaches": "*/2 * * * *"}
    try:
        entries = {e.id: e.cron for e in jobs.schedule()}
        assert entries["check-sla-breaches"] == "*/2 * * * *" and entries["relay-outbox"] == "* * * * *"
        app.config["SCHEDULE_OVERRIDES"] = {"relay-outbox": "every minute please"}
        with pytest.raises(ValueError, match="relay-outbox"):
            jobs.schedule()
    finally:
        app.config["SCHEDULE_OVERRIDES"] = {}


def test_registering_the_schedule_twice_never_doubles_an_entry(app, ctx):
    from rq_scheduler import Scheduler

    from portal.queueing import SCHEDULE
    from portal.services import jobs

    scheduler = Scheduler(connection=redis_connection())
    jobs.register_schedule(scheduler, jobs.schedule())
    jobs.register_schedule(scheduler, jobs.schedule())  # a restart
    ids = sorted(job.id for job in scheduler.get_jobs())
    assert ids == sorted(item.id for item in SCHEDULE)
