"""Every job, in a plain worker and in the pool: start and end lines with the correlation id of the request
that caused it, that id on the audit rows it writes, counters shared by every worker process, and one
dead-letter call after the last retry. Real Redis, real burst workers."""

from __future__ import annotations

import re
import subprocess

from rq.job import Job
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog
from portal.observability import RequestContext, set_request_context
from portal.policy import SYSTEM
from portal.queueing import push, redis_connection
from portal.services import jobs, sla_admin
from portal.services.job_metrics import JOB_DURATION_BUCKETS
from tests.jobs.test_worker import ROOT, _env, _flask

AUDIT_JOB = "tests.jobs.observability_jobs.write_audit_row"
FAILING_JOB = "tests.jobs.observability_jobs.always_fail"
CRASH_JOB = "tests.jobs.observability_jobs.crash_the_process"
NAP = "tests.jobs.sample_jobs.nap"
# The job lines are JSON (portal/logs.py): {"logger": "portal.jobs", "message": "job started: ...", ...}.
OUTCOME_WORD = r'"message": "(?:job )?(started|finished|failed-will-retry|failed-final|dead letter)'


def _burst(app, *args: str) -> str:
    """Run `flask jobs worker --burst ...` to the end; its log output."""
    result = subprocess.run(_flask("jobs", "worker", "--burst", *args), cwd=ROOT, env=_env(app),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _lines(output: str, job_id: str) -> list[str]:
    """The portal.jobs lines about one job, in order."""
    return [line for line in output.splitlines() if "portal.jobs" in line and job_id in line]


def _push_as(correlation_id: str | None, func: str, *args, queue: str = "default") -> Job:
    """Push a job as a request with this correlation id would (or with none bound)."""
    set_request_context(RequestContext(correlation_id=correlation_id))
    try:
        return push(func, *args, queue=queue)
    finally:
        set_request_context(RequestContext())


def test_a_job_caused_by_a_web_request_logs_start_and_end_with_that_requests_correlation_id(app, ctx, client,
                                                                                              factories):
    admin = factories.make_user("admin", email="admin.obs@example.com")
    factories.make_request()
    definition = sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "medium",
                                                      "response_time_hours": 4, "resolution_time_hours": 24})
    assert client.post("/login", data={"email": admin.email, "password": "correct-horse-battery"}).status_code == 303

    response = client.post(f"/admin/sla/{definition.id}", headers={"X-Correlation-ID": "corr-web-4711"},
                           data={"edit-response_time_hours": "2", "edit-resolution_time_hours": "12",
                                 "edit-at_risk_percent": "75", "edit-is_active": "y", "edit-apply_to_open": "y"})
    assert response.status_code in (200, 303) and response.headers["X-Correlation-ID"] == "corr-web-4711"
    (job_id,) = jobs.job_ids("queued", "analytics")[0][1:]  # relayed from the outbox after the commit

    output = _burst(app, "--queues", "analytics")

    start, end = _lines(output, job_id)
    assert "job started" in start and "jobs.analytics.rebuild_sla_clocks" in start
    assert "correlation corr-web-4711" in start
    assert re.search(r"job finished: .* on analytics in \d+\.\d{3} s \(correlation corr-web-4711\)", end), end


def test_a_job_binds_its_correlation_id_so_its_audit_rows_carry_it(app, ctx):
    from_request = _push_as("corr-push-77", AUDIT_JOB, "from a request")
    on_its_own = _push_as(None, AUDIT_JOB, "no request behind it")
    assert from_request.meta["correlation_id"] == "corr-push-77"  # push() recorded the caller's id

    output = _burst(app, "--queues", "default")

    rows = {row.after["note"]: row.correlation_id for row in db.session.scalars(select(AuditLog))}
    assert rows["from a request"] == "corr-push-77"
    given = Job.fetch(on_its_own.id, connection=redis_connection()).meta["correlation_id"]
    assert given.startswith("job-") and rows["no request behind it"] == given  # a job without one gets its own
    for line in _lines(output, on_its_own.id):
        assert f"correlation {given}" in line


def test_counters_after_finished_retried_and_dead_jobs_and_one_dead_letter_after_the_last_retry(app, ctx):
    naps = [push(NAP, 0) for _ in range(2)]
    failing = _push_as("corr-doomed-1", FAILING_JOB, "printer on fire")
    failing.retry_intervals = [0]  # retry at once: the default queue's count (3) stays, the waits go
    failing.save()
    push(NAP, 0, queue="email")  # waits: no worker serves email here

    output = _burst(app, "--queues", "default")

    lines = _lines(output, failing.id)
    outcomes = [re.search(OUTCOME_WORD, line).group(1) for line in lines]
    assert outcomes == ["started", "failed-will-retry"] * 3 + ["started", "failed-final", "dead letter"]
    assert "RuntimeError: printer on fire" in lines[-1] and "correlation corr-doomed-1" in lines[-1]
    assert output.count("dead letter:") == 1

    stats = jobs.job_stats()
    assert stats.jobs_total == {(NAP, "finished"): 2, (FAILING_JOB, "failed-will-retry"): 3,
                                (FAILING_JOB, "failed-final"): 1}
    nap_times = stats.job_duration_seconds[NAP]
    assert nap_times.count == 2 and 0 <= nap_times.sum < 5
    assert [b for b, _ in nap_times.buckets] == list(JOB_DURATION_BUCKETS)
    assert nap_times.buckets[-1][1] == 2  # cumulative: +Inf holds every run
    assert stats.job_duration_seconds[FAILING_JOB].count == 4
    assert stats.queue_depth["default"] == 0 and stats.queue_depth["email"] == 1
    assert stats.dead_letter_jobs == {"email": 0, "default": 1, "analytics": 0, "reports": 0, "exports": 0,
                                      "backup": 0}
    assert stats.dead_letters_total["default"] == 1
    assert all(Job.fetch(j.id, connection=redis_connection()).get_status() == "finished" for j in naps)


def test_pool_workers_log_and_add_to_the_same_counters(app, ctx):
    pushed = [_push_as(f"corr-pool-{n}", NAP, 0.4) for n in range(4)]

    output = _burst(app, "--queues", "default", "--concurrency", "2")

    for n, job in enumerate(pushed):
        start, end = _lines(output, job.id)
        assert "job started" in start and f"correlation corr-pool-{n}" in start
        assert "job finished" in end and f"correlation corr-pool-{n}" in end
    workers = {Job.fetch(j.id, connection=redis_connection()).worker_name for j in pushed}
    assert len(workers) == 2  # both pool processes ran jobs...
    stats = jobs.job_stats()
    assert stats.jobs_total == {(NAP, "finished"): 4}  # ...and counted them in one place
    assert stats.job_duration_seconds[NAP].count == 4
    assert stats.job_duration_seconds[NAP].sum >= 4 * 0.4


def test_a_job_whose_process_dies_is_reported_by_the_worker_with_its_correlation_id(app, ctx):
    """The work horse vanishes mid-job: the worker itself (not the job's process) writes the end line."""
    doomed = _push_as(None, CRASH_JOB)
    doomed.retries_left = 0
    doomed.save()

    output = _burst(app, "--queues", "default")

    lines = _lines(output, doomed.id)
    assert [re.search(OUTCOME_WORD, line).group(1) for line in lines] == ["started", "failed-final", "dead letter"]
    given = Job.fetch(doomed.id, connection=redis_connection()).meta["correlation_id"]
    assert all(f"correlation {given}" in line for line in lines)  # the id the horse gave it, read back
    assert "Work-horse terminated unexpectedly" in lines[1]
    stats = jobs.job_stats()
    assert stats.jobs_total == {(CRASH_JOB, "failed-final"): 1} and stats.dead_letter_jobs["default"] == 1
