"""An admin reads the System status page, fixes what it names, and watches it turn green without reloading."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD
from tests.factories import make_verified_backup
from tests.health.conftest import Processes, backup_dir, cover_every_sla_pair  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


def test_admin_reads_system_status_and_sees_it_recover(app, page, factories, shoot, backup_dir):  # noqa: F811

    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "System status")
    expect(page.locator("h1")).to_have_text("System status")
    status = page.locator("#system-status")
    expect(status.locator(".status-summary")).to_contain_text("failing")
    expect(page.locator("#check-workers .badge")).to_have_text("Failing")
    expect(page.locator("#check-workers")).to_contain_text("What to do: Start one: flask --app wsgi jobs worker")
    expect(page.locator("#check-scheduler .badge")).to_have_text("Failing")
    expect(page.locator("#check-database .badge")).to_have_text("OK")
    expect(page.locator("#check-verified_backup")).to_contain_text("No verified backup yet.")
    page.locator("#check-sla_definitions summary").click()
    expect(page.locator("#check-sla_definitions .check-details")).to_contain_text(
        "hardware: no SLA for low, medium, high, critical")
    shoot(page, "70-system-status-failing")

    # The operator does what the page says.
    processes = Processes(app)
    try:
        processes.worker()
        processes.scheduler()
        cover_every_sla_pair(app)
        assert app.test_cli_runner().invoke(args=["sla", "check"]).exit_code == 0
        with app.app_context():
            make_verified_backup("backup_20261202_020000.sql.gz.enc")

        page.evaluate("window.__noReload = true")
        # The page polls every 30 s: wait for the next refresh to bring the news.
        expect(status.locator(".status-summary")).to_contain_text("All checks pass.", timeout=45_000)
        assert page.evaluate("window.__noReload") is True  # swapped in place, not reloaded
        expect(page.locator(".check-fail")).to_have_count(0)
        expect(page.locator(".check-warn")).to_have_count(0)
        expect(page.locator("#check-workers")).to_contain_text("1 live worker(s); every queue is served.")
        expect(page.locator("#check-verified_backup")).to_contain_text("backup_20261202_020000.sql.gz.enc verified")
        page.locator("#check-periodic_jobs summary").click()
        expect(page.locator("#check-periodic_jobs .check-details")).to_contain_text("check-sla-breaches: */5 * * * *")
        shoot(page, "71-system-status-all-ok")
    finally:
        processes.stop_all()
