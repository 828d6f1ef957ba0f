"""Mail jobs with real RQ workers, a real SMTP server, and Redis stopped and started."""

from __future__ import annotations

import subprocess
import threading
from types import SimpleNamespace

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Notification, OutboxMessage
from portal.queueing import QUEUES, SCHEDULE, get_queue, push, relay_outbox
from portal.services import notifications
from tests.jobs.test_outbox import own_redis  # noqa: F401 - the fixture
from tests.jobs.test_worker import ROOT, _env, _flask


def _worker(app, redis_url: str | None = None, *extra: str) -> subprocess.CompletedProcess:
    env = {**_env(app), "MAIL_SERVER": app.config["MAIL_SERVER"], "MAIL_PORT": str(app.config["MAIL_PORT"]),
           "MAIL_USE_TLS": "false", "PORTAL_URL": app.config["PORTAL_URL"]}
    if redis_url:
        env["REDIS_URL"] = redis_url
    result = subprocess.run(_flask("jobs", "worker", "--burst", *extra), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result


def test_the_email_queue_policy_is_three_retries_with_growing_waits():
    assert (QUEUES["email"].max_retries, QUEUES["email"].intervals) == (3, (60, 120, 240))
    assert {e.id: (e.func, e.queue) for e in SCHEDULE}["send-digests"] == ("jobs.email.send_digests", "email")


def test_with_redis_down_pages_still_work_and_every_mail_goes_out_once_redis_is_back(app, smtp, own_redis):  # noqa: F811
    from tests import factories
    from tests.conftest import TEST_PASSWORD

    with app.app_context():
        requesters = [SimpleNamespace(email=u.email, name=u.name)
                      for u in (factories.make_user("requester") for _ in range(3))]
    own_redis.stop()
    for person in requesters:
        client = app.test_client()
        client.post("/login", data={"email": person.email, "password": TEST_PASSWORD})
        response = client.post("/requests/new", data={"title": f"Laptop for {person.name}",
                                                      "description": "It will not start.",
                                                      "category": "hardware", "priority": "medium"})
        assert response.status_code == 303, response.get_data(as_text=True)
    with app.app_context():
        waiting = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.relayed_at.is_(None), OutboxMessage.func == notifications.DELIVER_JOB))
        assert waiting == 3

    own_redis.start()
    _worker(app, own_redis.url)  # relays the outbox at start, then runs the mail jobs
    _worker(app, own_redis.url)  # a second worker finds nothing more to send
    mails = smtp.wait_for(3)
    assert sorted(m["To"] for m in mails) == sorted(p.email for p in requesters)
    assert all(m["Subject"].startswith("We received your request #") for m in mails)
    with app.app_context():
        assert relay_outbox() == 0
        statuses = db.session.scalars(select(Notification.status)).all()
        assert statuses == ["sent"] * 3


def test_a_delivery_job_run_twice_at_once_sends_one_mail(app, ctx, smtp, factories):
    requester = factories.make_request().requester  # its delivery job is queued already
    # The same job twice more, as a duplicate enqueue would: three jobs race in two worker processes.
    for _ in range(2):
        push(notifications.DELIVER_JOB, requester.id, queue="email")
    assert get_queue("email").count >= 2
    _worker(app, None, "--queues", "email", "--concurrency", "2")
    assert len(smtp.wait_for(1)) == 1
    assert [m["To"] for m in smtp.messages] == [requester.email]


def test_two_deliveries_racing_on_postgresql_send_one_mail(app, smtp):
    from tests import factories

    with app.app_context():
        requester = factories.make_request().requester
        person = requester.id
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run():
        with app.app_context():
            barrier.wait()
            results.append(notifications.deliver(person))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0, 1]
    assert len(smtp.messages) == 1


def test_the_breach_check_job_writes_alerts_that_the_email_worker_sends(app, ctx, smtp, factories):
    from datetime import timedelta

    from portal.models import SlaMetric
    from portal.models._time import utcnow
    from portal.policy import SYSTEM
    from portal.services import requests as svc
    from portal.services import sla_admin

    sla_admin.create_definition(SYSTEM, {"category": "hardware", "priority": "high",
                                         "response_time_hours": 1, "resolution_time_hours": 4})
    agent = factories.make_user("agent")
    req = factories.make_request(priority="high")
    svc.assign(factories.make_user("manager"), req.id, agent.id)
    # Both targets fell due long ago: the scheduled check (the real job, in the worker) finds them.
    db.session.execute(SlaMetric.__table__.update().values(
        response_due_at=utcnow() - timedelta(hours=49), resolution_due_at=utcnow() - timedelta(hours=46)))
    db.session.commit()
    push("jobs.analytics.check_sla_breaches", queue="analytics")
    _worker(app)

    def agent_subjects():
        return [m["Subject"] for m in smtp.to(agent.email)]

    smtp.wait_for(4)  # the requester's confirmation, the assignment, and the breach summaries
    assert agent_subjects() == [f"#{req.id} Printer is jammed was assigned to you", "2 updates on Service Portal"]
    assert f"Breached: Resolution target of #{req.id}" in smtp.to(agent.email)[-1].get_body(("plain",)).get_content()


def test_a_failing_email_job_is_retried_three_times_on_the_stated_waits(app, ctx, tmp_path):
    """The email queue's waits (60, 120, 240 s) scaled to 1, 2, 4 s; the count is never scaled."""
    import time

    from rq.job import Job

    from portal.queueing import redis_connection

    attempts = tmp_path / "attempts.txt"
    app.config["JOB_RETRY_SCALE"] = 1 / 60
    try:
        job = push("tests.jobs.sample_jobs.fail_and_record", str(attempts), queue="email")
    finally:
        app.config["JOB_RETRY_SCALE"] = 1
    assert job.retries_left == 3 and job.retry_intervals == [1, 2, 4]

    worker = subprocess.Popen(_flask("jobs", "worker", "--queues", "email"), cwd=ROOT, env=_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Job.fetch(job.id, connection=redis_connection()).get_status() == "failed":
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    times = [float(line) for line in attempts.read_text().split()]
    assert len(times) == 4  # the first run and three retries, then the dead-letter queue
    waits = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    for wait, stated in zip(waits, (1, 2, 4), strict=True):
        assert stated - 0.2 <= wait <= stated + 3, waits
    assert job.id in get_queue("email").failed_job_registry.get_job_ids()


def test_a_job_that_fails_for_good_mails_every_admin_once(app, ctx, smtp, factories):
    admins = [factories.make_user("admin") for _ in range(2)]
    factories.make_user("manager")
    job = push("tests.jobs.sample_jobs.fail", "the export disk is full", queue="exports")
    job.retries_left = 0  # its last try
    job.save()
    _worker(app)
    mails = smtp.wait_for(2)
    assert sorted(m["To"] for m in mails) == sorted(a.email for a in admins)
    for mail in mails:
        assert mail["Subject"] == "Job failed after its last retry: tests.jobs.sample_jobs.fail (exports)"
        text = mail.get_body(("plain",)).get_content()
        assert "RuntimeError: the export disk is full" in text and job.id in text
    _worker(app)  # nothing more: one mail per failure
    assert len(smtp.messages) == 2
