"""The admin's Backups page: who may open it, the list, "Back up now", verify, downloads and their audit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.web.helpers import HX, csrf_from_form, login_next, text_of

NAME = "backup_20261201_020000.sql.gz.enc"
OLDER = "backup_20261130_020000.sql.gz.enc"
FOUND = "backup_20261129_020000.sql.gz.enc"
CREATE = "jobs.backup.create_backup"
VERIFY = "jobs.backup.verify_backup"


@pytest.fixture()
def backup_env(app, tmp_path):
    """BACKUP_DIR is a fresh directory of this test's and a passphrase is set; both restored afterwards."""
    directory = tmp_path / "backups"
    directory.mkdir()
    saved = {key: app.config.get(key) for key in ("BACKUP_DIR", "BACKUP_PASSPHRASE", "BACKUP_PASSPHRASE_FILE")}
    app.config.update(BACKUP_DIR=str(directory), BACKUP_PASSPHRASE="correct horse battery staple",
                      BACKUP_PASSPHRASE_FILE=None)
    yield directory
    app.config.update(saved)


@pytest.fixture()
def no_passphrase(app, backup_env):
    app.config["BACKUP_PASSPHRASE"] = None
    return backup_env


@pytest.fixture()
def admin(make):
    return make.user("admin")


def make_backup(app, name: str | None, status: str = "verified", hours_ago: float = 1, error: str | None = None,
                counts: dict | None = None, size: int | None = 2048) -> int:
    """A catalog row as the backup service leaves it; returns its id."""
    from portal.extensions import db
    from portal.models import Backup
    from portal.models._time import utcnow

    with app.app_context():
        when = utcnow() - timedelta(hours=hours_ago)
        done = status in ("verified", "failed")
        row = Backup(name=name, status=status, trigger="scheduled", created_at=when,
                     started_at=when if status != "queued" else None, finished_at=when if done else None,
                     verified_at=when + timedelta(minutes=2) if status == "verified" else None,
                     size_bytes=size if name else None, table_counts=counts, error=error)
        db.session.add(row)
        db.session.commit()
        return row.id


def write_files(directory, name: str, content: bytes = b"Salted__12345678encrypted bytes") -> bytes:
    (directory / name).write_bytes(content)
    (directory / f"{name}.hmac").write_text(f"file: {name}\nsize: {len(content)}\n")
    return content


def count(app, model: str, *where) -> int:
    import portal.models as models
    from portal.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(getattr(models, model)).where(*where))


def downloads(app) -> int:
    from portal.models import AuditLog

    return count(app, "AuditLog", AuditLog.action == "backup.downloaded")


def outbox(app, func_name: str) -> list[list]:
    from portal.extensions import db
    from portal.models import OutboxMessage

    with app.app_context():
        return [row.args or [row.kwargs] for row in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.func == func_name).order_by(OutboxMessage.id))]


# ---------------------------------------------------------------- who may open it

@pytest.mark.parametrize("role", ["requester", "agent", "manager"])
@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/admin/backups"), ("POST", "/admin/backups"), ("POST", f"/admin/backups/{NAME}/verify"),
    ("GET", f"/admin/backups/{NAME}/download"), ("GET", f"/admin/backups/{NAME}/download/hmac"),
])
def test_backups_page_is_for_admins_only(app, login_client, make, backup_env, role, method, url):
    write_files(backup_env, NAME)
    response = login_client(make.user(role)).open(url, method=method)
    assert response.status_code == 403
    assert "You do not have access to this page" in text_of(response)
    assert b"Salted__" not in response.get_data()
    assert count(app, "Backup") == 0 and downloads(app) == 0


def test_backups_page_signed_out_goes_to_sign_in(client):
    response = client.get("/admin/backups")
    assert response.status_code == 302
    assert login_next(response.headers["Location"]) == "/admin/backups"


def test_backups_nav_link_only_for_admins(login_client, make, admin):
    html = text_of(login_client(admin).get("/admin/backups"))
    assert 'href="/admin/backups" aria-current="page">Backups</a>' in html
    assert 'aria-current="page">SLA setup' not in html
    assert 'href="/admin/backups"' not in text_of(login_client(make.user("manager")).get("/requests"))


# ---------------------------------------------------------------- the list

def test_backups_lists_catalog_rows_and_files(app, login_client, admin, backup_env):
    make_backup(app, NAME, hours_ago=3, counts={"user": 3, "service_request": 40}, size=3000)
    make_backup(app, OLDER, status="failed", hours_ago=27,
                error="Verification failed: The dump is incomplete: its last line is missing.")
    make_backup(app, None, status="queued", hours_ago=0)
    write_files(backup_env, NAME, b"x" * 3000)
    write_files(backup_env, FOUND)
    (backup_env / "notes.txt").write_text("not a backup")

    response = login_client(admin).get("/admin/backups")
    assert response.status_code == 200
    html = text_of(response)
    assert "<h1>Backups</h1>" in html
    # The summary: the newest verified backup and the settings.
    summary = html[html.index('class="card backup-summary'):html.index('class="table-wrap"')]
    assert "Newest verified backup made" in summary and "3 h ago" in summary and NAME in summary
    assert "every night at 02:00 UTC" in summary
    assert "kept 30 days" in summary and "RETENTION_DAYS" in summary
    assert str(backup_env) in summary and "BACKUP_DIR" in summary
    assert "Backups are not set up" not in html
    # Rows, newest first: the queued one, then the verified one, then the failed one, then the found file.
    rows = re.findall(r'<tr id="backup-([^"]+)" class="backup backup-(\w+)"', html)
    assert [status for _, status in rows] == ["queued", "verified", "failed", "unverified"]
    assert [name for name, _ in rows][1:] == [NAME, OLDER, FOUND]
    verified = _row(html, NAME)
    assert "Verified" in verified and "3 KB" in verified and "43" in verified and ">Yes<" in verified
    assert f'href="/admin/backups/{NAME}/download"' in verified
    assert f'href="/admin/backups/{NAME}/download/hmac"' in verified
    failed = _row(html, OLDER)
    assert "Failed" in failed and "The dump is incomplete: its last line is missing." in failed
    assert ">No<" in failed and "download" not in failed
    found = _row(html, FOUND)
    assert "Unverified" in found and "Not in the catalog" in found and "verify it" in found
    assert "Queued" in html and "waiting for a worker" in html
    assert "notes.txt" not in html
    # Something is in progress, so the list polls itself; "Back up now" says why it is off.
    assert 'hx-get="/admin/backups" hx-trigger="every 3s"' in html
    assert "A backup is in progress" in html


def _row(html: str, name: str) -> str:
    start = html.index(f'<tr id="backup-{name}"')
    return html[start:html.index("</tr>", start)]


def test_backups_empty_reads_calmly_and_does_not_poll(login_client, admin, backup_env):
    html = text_of(login_client(admin).get("/admin/backups"))
    assert "No verified backup yet." in html
    assert "No backups yet. The first is made every night at 02:00 UTC" in html
    assert "hx-trigger" not in html[html.index('id="backups-admin"'):]
    button = re.search(r"<button[^>]*>Back up now</button>", html).group(0)
    assert "disabled" not in button


def test_backups_htmx_poll_returns_the_partial_and_stops_when_done(app, login_client, admin, backup_env):
    row_id = make_backup(app, None, status="running", hours_ago=0)
    client = login_client(admin)
    response = client.get("/admin/backups", headers=HX)
    html = text_of(response)
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="backups-admin"')
    assert 'hx-trigger="every 3s"' in html and "Running" in html
    assert "HX-Request" in response.headers["Vary"]

    from portal.extensions import db
    from portal.models import Backup

    with app.app_context():
        row = db.session.get(Backup, row_id)
        row.status, row.name, row.verified_at = "verified", NAME, row.created_at
        db.session.commit()
    write_files(backup_env, NAME)
    done = text_of(client.get("/admin/backups", headers=HX))
    assert "hx-trigger" not in done and "Verified" in done


def test_backups_schedule_is_read_from_the_job_schedule(app, login_client, admin, backup_env):
    previous = app.config["SCHEDULE_OVERRIDES"]
    app.config["SCHEDULE_OVERRIDES"] = {"backup-database": "30 23 * * *"}
    try:
        html = text_of(login_client(admin).get("/admin/backups"))
    finally:
        app.config["SCHEDULE_OVERRIDES"] = previous
    assert "every night at 23:30 UTC" in html and "02:00 UTC" not in html


def test_backups_without_passphrase_say_what_to_set(app, login_client, admin, no_passphrase):
    write_files(no_passphrase, NAME)
    response = login_client(admin).get("/admin/backups")
    assert response.status_code == 200
    html = text_of(response)
    assert "Backups are not set up." in html and "set BACKUP_PASSPHRASE or BACKUP_PASSPHRASE_FILE" in html
    assert "BACKUP_PASSPHRASE_FILE" in html
    button = re.search(r"<button[^>]*>Back up now</button>", html).group(0)
    assert "disabled" in button and 'aria-describedby="backup-now-why"' in button
    assert "off until a passphrase is set" in html
    verify = re.search(r"<button[^>]*>Verify</button>", _row(html, NAME)).group(0)
    assert "disabled" in verify


def test_backups_unreadable_passphrase_file_is_named_not_a_500(app, login_client, admin, no_passphrase):
    app.config["BACKUP_PASSPHRASE_FILE"] = str(no_passphrase / "missing-passphrase")
    html = text_of(login_client(admin).get("/admin/backups"))
    assert "Backups are not set up." in html and "cannot be read" in html


# ---------------------------------------------------------------- Back up now

def test_back_up_now_queues_exactly_one(app, login_client, admin, backup_env):
    client = login_client(admin)
    response = client.post("/admin/backups")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/backups"
    page = text_of(client.get("/admin/backups"))
    assert "Backup queued; it appears here when done." in page
    assert "Queued" in page
    assert count(app, "Backup") == 1
    [(kwargs,)] = outbox(app, CREATE)
    assert kwargs == {"backup_id": 1}

    again = client.post("/admin/backups")
    assert again.status_code == 303
    page = text_of(client.get("/admin/backups"))
    assert "A backup is already waiting for a worker" in page
    assert count(app, "Backup") == 1 and len(outbox(app, CREATE)) == 1


def test_back_up_now_without_passphrase_says_so_and_queues_nothing(app, login_client, admin, no_passphrase):
    client = login_client(admin)
    assert client.post("/admin/backups").status_code == 303
    page = text_of(client.get("/admin/backups"))
    assert "No backup passphrase is set: set BACKUP_PASSPHRASE or BACKUP_PASSPHRASE_FILE." in page
    assert count(app, "Backup") == 0 and outbox(app, CREATE) == []


def test_back_up_now_over_htmx_redirects_the_htmx_way(app, login_client, admin, backup_env):
    response = login_client(admin).post("/admin/backups", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/admin/backups"
    assert count(app, "Backup") == 1


def test_back_up_now_without_csrf_token_is_refused(app, client, make, backup_env, csrf_on):
    admin = make.user("admin")
    token = csrf_from_form(text_of(client.get("/login")))
    client.post("/login", data={"email": admin.email, "password": admin.password, "csrf_token": token})
    page = text_of(client.get("/admin/backups"))
    response = client.post("/admin/backups")
    assert response.status_code == 400
    assert "The form expired or was sent from elsewhere" in text_of(response)
    write_files(backup_env, NAME)
    assert client.post(f"/admin/backups/{NAME}/verify").status_code == 400
    assert count(app, "Backup") == 0 and outbox(app, CREATE) == [] and outbox(app, VERIFY) == []
    # With the page's token it goes through.
    ok = client.post("/admin/backups", data={"csrf_token": csrf_from_form(page)})
    assert ok.status_code == 303 and count(app, "Backup") == 1


# ---------------------------------------------------------------- Verify

def test_verify_queues_a_job_and_the_row_polls_until_done(app, login_client, admin, backup_env):
    make_backup(app, NAME)
    write_files(backup_env, NAME)
    client = login_client(admin)
    response = client.post(f"/admin/backups/{NAME}/verify")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/backups"
    assert outbox(app, VERIFY) == [[NAME]]
    page = text_of(client.get("/admin/backups"))
    assert "Verification queued" in page
    row = _row(page, NAME)
    assert "Verifying…" in row and re.search(r"<button[^>]*disabled[^>]*>Verify</button>", row)
    assert 'hx-trigger="every 3s"' in page

    from rq import Queue

    from portal.queueing import redis_connection

    with app.app_context():
        Queue("backup", connection=redis_connection()).empty()  # as if a worker had taken and finished it
    assert "Verifying…" not in text_of(client.get("/admin/backups"))


@pytest.mark.parametrize(("name", "message"), [
    ("not-a-backup.txt", "is not a backup name"),
    ("backup_20261128_020000.sql.gz.enc", "is no longer in the backup directory"),
])
def test_verify_refuses_a_bad_or_missing_name(app, login_client, admin, backup_env, name, message):
    client = login_client(admin)
    assert client.post(f"/admin/backups/{name}/verify").status_code == 303
    assert message in text_of(client.get("/admin/backups"))
    assert outbox(app, VERIFY) == []


def test_verify_without_passphrase_is_refused(app, login_client, admin, no_passphrase):
    write_files(no_passphrase, NAME)
    client = login_client(admin)
    client.post(f"/admin/backups/{NAME}/verify")
    assert "No backup passphrase is set" in text_of(client.get("/admin/backups"))
    assert outbox(app, VERIFY) == []


# ---------------------------------------------------------------- Download

def test_download_gives_the_exact_bytes_and_is_audited(app, login_client, admin, backup_env):
    from portal.models import AuditLog

    row_id = make_backup(app, NAME)
    content = write_files(backup_env, NAME, bytes(range(256)) * 40)
    client = login_client(admin)
    response = client.get(f"/admin/backups/{NAME}/download")
    assert response.status_code == 200
    assert response.get_data() == content
    assert response.headers["Content-Disposition"] == f"attachment; filename={NAME}"
    assert response.mimetype == "application/octet-stream"

    mac = client.get(f"/admin/backups/{NAME}/download/hmac")
    assert mac.status_code == 200
    assert mac.get_data() == (backup_env / f"{NAME}.hmac").read_bytes()
    assert mac.headers["Content-Disposition"] == f"attachment; filename={NAME}.hmac"

    from portal.extensions import db

    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "backup.downloaded")
                                  .order_by(AuditLog.id)).all()
        assert [(r.action, r.entity_type, r.entity_id, r.actor_id) for r in rows] == [
            ("backup.downloaded", "backup", row_id, admin.id)] * 2
        assert rows[0].after == {"name": NAME, "file": NAME, "size": len(content)}
        assert rows[1].after["file"] == f"{NAME}.hmac"
        assert rows[0].ip and rows[0].correlation_id


def test_download_supports_ranges(app, login_client, admin, backup_env):
    content = write_files(backup_env, NAME, b"0123456789" * 100)
    response = login_client(admin).get(f"/admin/backups/{NAME}/download", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206 and response.get_data() == content[10:20]


def test_download_of_a_file_not_in_the_catalog_is_audited_too(app, login_client, admin, backup_env):
    write_files(backup_env, FOUND)
    assert login_client(admin).get(f"/admin/backups/{FOUND}/download").status_code == 200
    from portal.models import AuditLog

    assert count(app, "AuditLog", AuditLog.action == "backup.downloaded", AuditLog.entity_id == 0) == 1


@pytest.mark.parametrize("url", [
    "/admin/backups/../x/download",
    "/admin/backups/..%2Fx/download",
    "/admin/backups/%2E%2E/download",
    "/admin/backups/x/download",
    f"/admin/backups/{NAME}/download",           # well formed, but not there
    f"/admin/backups/{OLDER}/download/hmac",     # the file is there, its .hmac is not
    "/admin/backups/passwd/download",
    f"/admin/backups/{NAME}.hmac/download",
])
def test_download_of_a_bad_or_unknown_name_is_404(app, login_client, admin, backup_env, url):
    (backup_env.parent / "x").write_text("outside")
    (backup_env / OLDER).write_bytes(b"Salted__older")
    response = login_client(admin).get(url)
    assert response.status_code == 404
    assert b"outside" not in response.get_data() and b"Salted__" not in response.get_data()
    assert downloads(app) == 0


def test_download_refuses_a_symlink_out_of_the_directory(app, login_client, admin, backup_env):
    secret = backup_env.parent / "secret.txt"
    secret.write_text("not yours")
    (backup_env / NAME).symlink_to(secret)
    response = login_client(admin).get(f"/admin/backups/{NAME}/download")
    assert response.status_code == 404 and b"not yours" not in response.get_data()
