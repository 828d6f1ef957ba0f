"""An admin makes a backup from the Backups page, watches it verify without reloading, and downloads it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import go_to, sign_in
from tests.conftest import TEST_PASSWORD
from tests.health.conftest import Processes

pytestmark = pytest.mark.browser

PASSPHRASE = "correct horse battery staple"


class BackupProcesses(Processes):
    """Workers that see the same backup directory, passphrase, log and mail directories as the live portal."""

    def start(self, *args: str):
        import subprocess

        from tests.jobs.test_worker import ROOT, _env, _flask

        env = _env(self.app)
        env.update({key: str(self.app.config[key]) for key in ("BACKUP_DIR", "BACKUP_PASSPHRASE", "LOG_DIR",
                                                                 "MAIL_DIR")})
        proc = subprocess.Popen(_flask(*args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        self.running.append(proc)
        return proc


@pytest.fixture()
def backup_env(app, tmp_path):
    """A backup directory of the test's own and a passphrase, for the live portal and its worker."""
    directory = tmp_path / "backups"
    directory.mkdir()
    saved = {key: app.config.get(key) for key in ("BACKUP_DIR", "BACKUP_PASSPHRASE", "BACKUP_PASSPHRASE_FILE")}
    app.config.update(BACKUP_DIR=str(directory), BACKUP_PASSPHRASE=PASSPHRASE, BACKUP_PASSPHRASE_FILE=None)
    yield directory
    app.config.update(saved)


def test_admin_backs_up_now_and_downloads_the_verified_backup(app, page, factories, shoot, backup_env):
    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    go_to(page, "Backups")
    expect(page.locator("h1")).to_have_text("Backups")
    admin = page.locator("#backups-admin")
    expect(admin.locator(".backup-summary")).to_contain_text("No verified backup yet.")
    expect(admin.locator(".backup-facts")).to_contain_text("every night at 02:00 UTC")
    expect(admin).to_contain_text("No backups yet.")
    shoot(page, "80-backups-empty")
    nav_height = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height")
    assert nav_height < 60, f"the admin navigation wraps at 1280 px ({nav_height}px tall)"

    page.click("button:has-text('Back up now')")
    expect(page.locator("#flash .flash-success")).to_have_text("Backup queued; it appears here when done.")
    rows = admin.locator("tr.backup")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("Queued")
    expect(admin.get_by_role("button", name="Back up now")).to_be_disabled()
    page.evaluate("window.__noReload = true")

    processes = BackupProcesses(app)
    try:
        processes.worker("backup")
        # The list polls every 3 s while the backup is queued or running, then stops.
        expect(rows.first.locator(".badge")).to_have_text("Verified", timeout=90_000)
    finally:
        processes.stop_all()
    assert page.evaluate("window.__noReload") is True  # swapped in place, not reloaded
    [made] = sorted(p for p in backup_env.iterdir() if p.name.endswith(".sql.gz.enc"))
    expect(rows.first).to_contain_text(made.name)
    expect(rows.first.locator("td").nth(5)).to_have_text("Yes")
    expect(admin.locator(".backup-summary")).to_contain_text("Newest verified backup made just now")
    expect(admin.get_by_role("button", name="Back up now")).to_be_enabled()
    assert page.locator("#backups-admin[hx-trigger]").count() == 0  # the poll stopped
    shoot(page, "81-backups-verified")

    with page.expect_download() as download:
        rows.first.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == made.name
    assert open(download.value.path(), "rb").read() == made.read_bytes()
    with page.expect_download() as mac:
        rows.first.get_by_role("link", name=".hmac").click()
    assert mac.value.suggested_filename == f"{made.name}.hmac"

    from portal.extensions import db
    from portal.models import AuditLog

    db.session.expire_all()
    audited = db.session.scalars(db.select(AuditLog.after).where(AuditLog.action == "backup.downloaded")).all()
    assert sorted(a["file"] for a in audited) == [made.name, f"{made.name}.hmac"]


def test_backups_page_on_a_phone(browser, live_server, app, factories, shoot, backup_env):
    from tests.factories import make_verified_backup

    factories.make_user("admin", email="ada@example.com", name="Ada Admin")
    name = "backup_20261201_020000.sql.gz.enc"
    make_verified_backup(name, size=48_213)
    (backup_env / name).write_bytes(b"Salted__" + bytes(48_205))
    failed = make_verified_backup("backup_20261130_020000.sql.gz.enc", size=47_900)
    failed.status, failed.verified_at = "failed", None
    failed.error = ("Verification failed: backup_20261130_020000.sql.gz.enc is damaged: its contents changed since "
                    "it was written (the HMAC does not match). Use another backup.")
    factories.db.session.commit()
    (backup_env / "backup_20261129_020000.sql.gz.enc").write_bytes(b"Salted__" + bytes(47_000))
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, "ada@example.com", TEST_PASSWORD)
    page.goto("/admin/backups")
    expect(page.locator("#backups-admin tr.backup")).to_have_count(3)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the Backups page scrolls sideways on a phone ({width}px wide)"
    shoot(page, "82-backups-phone")
    page.set_viewport_size({"width": 1280, "height": 860})
    table = page.evaluate("document.querySelector('#backups-admin .table-wrap').scrollWidth "
                          "- document.querySelector('#backups-admin .table-wrap').clientWidth")
    shoot(page, "83-backups-verified-failed-found")
    assert table <= 0, f"the list scrolls sideways at 1280 px ({table}px too wide)"
    context.close()
