"""An admin deals with a failed background job in the browser."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD
from tests.jobs.test_worker import ROOT, _env, _flask

pytestmark = pytest.mark.browser


def test_admin_requeues_a_failed_job(app, page, factories, shoot):
    from portal.queueing import push

    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    for message in ("SMTP server refused the connection", "Export file system is full"):
        job = push("tests.jobs.sample_jobs.fail", message, queue="email" if "SMTP" in message else "exports")
        job.retries_left = 0
        job.save()
    ran = subprocess.run(_flask("jobs", "worker", "--queues", "email,exports", "--burst"), cwd=ROOT, env=_env(app),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr

    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "Failed jobs")
    jobs = page.locator("#jobs-admin .job")
    expect(jobs).to_have_count(2)
    expect(page.locator("#jobs-admin")).to_contain_text("RuntimeError: SMTP server refused the connection")
    page.evaluate("window.__noReload = true")
    jobs.first.locator("summary").click()
    expect(jobs.first.locator("pre.traceback")).to_contain_text("Traceback (most recent call last)")
    shoot(page, "40-failed-jobs")

    page.select_option("#jobs-queue", "email")
    expect(jobs).to_have_count(1)
    assert "queue=email" in page.url
    jobs.first.locator("button:has-text('Requeue')").click()
    expect(page.locator("#jobs-admin .flash-success")).to_contain_text("The job is back on its queue.")
    expect(jobs).to_have_count(0)
    expect(page.locator("#jobs-admin")).to_contain_text("No failed jobs on email.")
    assert page.evaluate("window.__noReload") is True
    shoot(page, "41-failed-jobs-requeued")
