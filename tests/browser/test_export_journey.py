"""A manager exports the filtered request list, watches it finish, downloads it; then asks for an SLA report."""

from __future__ import annotations

import csv
import io
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import TEST_PASSWORD
from tests.exports.conftest import seed_requests
from tests.jobs.test_worker import ROOT, _env, _flask

pytestmark = pytest.mark.browser


@pytest.fixture()
def export_dir(app, tmp_path):
    previous = app.config["EXPORT_DIR"]
    app.config["EXPORT_DIR"] = str(tmp_path / "exports")
    yield tmp_path / "exports"
    app.config["EXPORT_DIR"] = previous


def _worker(app, export_dir, queues: str) -> subprocess.Popen:
    env = {**_env(app), "EXPORT_DIR": str(export_dir)}
    return subprocess.Popen(_flask("jobs", "worker", "--burst", "--queues", queues), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_manager_exports_the_filtered_list_and_downloads_it(app, page, factories, shoot, export_dir):
    from portal.queueing import push

    manager = factories.make_user("manager", email="mona@example.com", name="Mona Manager")
    requester = factories.make_user("requester", email="rita@example.com", name="Rita Requester")
    agent = factories.make_user("agent", email="alex@example.com", name="Alex Agent")
    seed_requests(app, 400, requester.id, agent.id)
    del manager

    sign_in(page, "mona@example.com", TEST_PASSWORD)
    page.click("nav.tabs >> text=All")   # staff land on the open work; all 400 here
    page.wait_for_url("**/requests?status=any")
    page.select_option("#priority", "critical")
    expect(page.locator("#request-table .count")).to_contain_text("100 requests")
    expect(page.locator(".export-actions")).to_contain_text("Export these 100")
    assert "priority=critical" in page.url
    shoot(page, "50-export-buttons-on-the-list")

    page.click(".export-actions button:has-text('Export CSV')")
    page.wait_for_url("**/exports/*")
    expect(page.locator("#export-progress")).to_contain_text("Waiting for a worker")
    expect(page.locator(".export-facts")).to_contain_text("Critical")
    shoot(page, "51-export-waiting")

    worker = _worker(app, export_dir, "exports")
    assert worker.wait(timeout=120) == 0, worker.stderr.read()
    download_link = page.locator("#export-progress a:has-text('Download')")
    expect(download_link).to_be_visible(timeout=10_000)  # the page polled and found it done
    expect(page.locator("#export-progress")).to_contain_text("100 rows")
    shoot(page, "52-export-ready")
    with page.expect_download() as info:
        download_link.click()
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert rows[0][:4] == ["id", "title", "status", "priority"] and len(rows) == 101
    assert {row[3] for row in rows[1:]} == {"Critical"}

    page.click("nav >> text=Exports")
    expect(page.locator("#export-rows tbody tr")).to_have_count(1)
    expect(page.locator("#export-rows")).to_contain_text("Ready")

    page.click("text=New SLA report")
    push("jobs.analytics.calculate_trends", queue="analytics")
    page.click("text=Last 7 days")
    shoot(page, "53-reports-page")
    page.fill("#start", "2020-01-01")
    page.click("button:has-text('Make the PDF report')")
    expect(page.locator(".flash-error")).to_contain_text("A report covers at most 366 days.")
    shoot(page, "54-reports-bad-period")
    page.click("text=Last 30 days")
    page.click("button:has-text('Make the PDF report')")
    page.wait_for_url("**/exports/*")
    worker = _worker(app, export_dir, "analytics,reports")
    assert worker.wait(timeout=120) == 0, worker.stderr.read()
    expect(page.locator("#export-progress a:has-text('Download')")).to_be_visible(timeout=10_000)
    expect(page.locator("#export-progress")).to_contain_text("400 requests created in the period")
    shoot(page, "55-report-ready")
    page.click("nav >> text=Exports")
    expect(page.locator("#export-rows tbody tr")).to_have_count(2)
    shoot(page, "56-exports-list")
