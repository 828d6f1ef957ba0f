"""The admin's Failed jobs page: real failed jobs (a real worker ran them), requeue and discard."""

from __future__ import annotations

import subprocess

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry

from tests.jobs.test_worker import ROOT, _env, _flask
from tests.web.helpers import HX, text_of


def _redis(app):
    from portal.queueing import redis_connection

    with app.app_context():
        return redis_connection()


@pytest.fixture()
def failed(app):
    """Three jobs that failed after their last retry: two on default, one on email."""

    def make(messages=(("default", "printer on fire"), ("default", "toner empty"), ("email", "SMTP said no"))):
        from portal.queueing import push

        with app.app_context():
            ids = []
            for queue, message in messages:
                job = push("tests.jobs.sample_jobs.fail", message, queue=queue)
                job.retries_left = 0
                job.save()
                ids.append(job.id)
        result = subprocess.run(_flask("jobs", "worker", "--queues", "default,email", "--burst"), cwd=ROOT,
                                env=_env(app), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return ids

    return make()


def _failed_ids(app, queue: str) -> list[str]:
    return FailedJobRegistry(queue=Queue(queue, connection=_redis(app))).get_job_ids()


def test_admin_sees_failed_jobs_with_error_and_traceback(app, login_client, make, failed):
    html = text_of(login_client(make.user("admin")).get("/admin/jobs"))
    assert "RuntimeError: printer on fire" in html and "RuntimeError: SMTP said no" in html
    assert "Traceback (most recent call last)" in html
    assert html.count('class="job"') == 3
    assert "Requeue all (3)" in html
    only_email = text_of(login_client(make.user("admin")).get("/admin/jobs?queue=email"))
    assert only_email.count('class="job"') == 1 and "Requeue all (1)" in only_email


def test_requeue_one_puts_it_back_on_its_queue(app, login_client, make, failed):
    response = login_client(make.user("admin")).post(f"/admin/jobs/{failed[0]}/requeue", headers=HX)
    assert response.status_code == 200
    html = text_of(response)
    assert html.lstrip().startswith('<div id="jobs-admin"')
    assert "The job is back on its queue." in html
    assert html.count('class="job"') == 2
    assert failed[0] in Queue("default", connection=_redis(app)).job_ids
    assert failed[0] not in _failed_ids(app, "default")


def test_discard_all_of_a_queue_leaves_the_others(app, login_client, make, failed):
    client = login_client(make.user("admin"))
    response = client.post("/admin/jobs/discard-all", data={"queue": "default"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/jobs?queue=default"
    assert "2 job(s) were discarded." in text_of(client.get(response.headers["Location"]))
    assert _failed_ids(app, "default") == [] and _failed_ids(app, "email") == [failed[2]]


def test_requeue_all_sends_every_failed_job_again(app, login_client, make, failed):
    response = login_client(make.user("admin")).post("/admin/jobs/requeue-all", headers=HX)
    assert "3 job(s) are back on their queues." in text_of(response)
    assert len(Queue("default", connection=_redis(app)).job_ids) == 2


def test_a_job_already_dealt_with_is_explained_not_an_error_page(app, login_client, make, failed):
    client = login_client(make.user("admin"))
    client.post(f"/admin/jobs/{failed[0]}/discard", headers=HX)
    again = client.post(f"/admin/jobs/{failed[0]}/discard", headers=HX)
    assert again.status_code == 409
    assert "no longer in the failed list" in text_of(again)


def test_no_failed_jobs_reads_calmly(login_client, make):
    html = text_of(login_client(make.user("admin")).get("/admin/jobs"))
    assert "No failed jobs. Everything that ran has finished or will be retried." in html


def test_redis_down_the_page_says_so_instead_of_failing(app, login_client, make):
    client = login_client(make.user("admin"))
    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/admin/jobs")
        refused = client.post("/admin/jobs/requeue-all", headers=HX)
    finally:
        app.config["REDIS_URL"] = previous
    assert response.status_code == 200 and "cannot be reached right now" in text_of(response)
    assert refused.status_code == 400 and "cannot be reached right now" in text_of(refused)
