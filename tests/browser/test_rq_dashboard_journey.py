"""An admin opens RQ's dashboard from the admin menu and requeues a failed job, under the portal's CSP."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect
from rq.registry import FailedJobRegistry

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD
from tests.jobs.test_worker import ROOT, _env, _flask

pytestmark = pytest.mark.browser


def test_admin_requeues_a_failed_job_in_the_rq_dashboard(app, page, factories, shoot):
    from portal.queueing import get_queue, push

    factories.make_user("admin", email="ada.rq@example.com", name="Ada Admin")
    push("tests.jobs.sample_jobs.nap", 0, queue="email")
    push("tests.jobs.sample_jobs.nap", 0, queue="email")
    default = get_queue("default")
    failed = push("tests.jobs.sample_jobs.fail", "printer on fire", queue="default")
    failed.retries_left = 0
    failed.save()
    ran = subprocess.run(_flask("jobs", "worker", "--queues", "default", "--burst"), cwd=ROOT, env=_env(app),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert FailedJobRegistry(queue=default).get_job_ids() == [failed.id]
    refused_by_csp: list[str] = []
    page.on("console", lambda msg: refused_by_csp.append(msg.text) if "Content Security Policy" in msg.text
            else None)

    sign_in(page, "ada.rq@example.com", TEST_PASSWORD)
    go_to(page, "Failed jobs")
    page.click(".page-head >> text=RQ dashboard")
    page.wait_for_url("**/admin/rq/")
    rows = page.locator("#queues tbody tr[data-role=queue]")  # drawn by its scripts from queues.json
    # The two naps, and the admin's mail about the job that failed for good.
    expect(rows.filter(has_text="email").locator("td").nth(1)).to_have_text("3")
    default_row = rows.filter(has_text="default")
    expect(default_row.locator("td.failed").first).to_have_text("1")
    shoot(page, "50-rq-dashboard-queues")

    default_row.locator("td.failed a").first.click()
    page.wait_for_url("**/view/jobs/default/failed/**")
    job_row = page.locator("#jobs tbody tr", has_text="printer on fire")
    expect(job_row).to_have_count(1)
    shoot(page, "51-rq-dashboard-failed-jobs")
    job_row.locator("[data-role=requeue-job-btn]").click()
    expect(job_row).to_have_count(0)

    assert FailedJobRegistry(queue=default).get_job_ids() == []
    assert failed.id in default.job_ids
    assert refused_by_csp == []
