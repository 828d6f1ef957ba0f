"""Creating and verifying backups on the real test database: refusals, races, failures, metrics, schedule, worker."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Backup, Notification
from portal.queueing import relay_outbox
from portal.services import backups
from portal.services.errors import ServiceError
from tests.backup.conftest import PASSPHRASE
from tests.jobs.test_worker import ROOT, _env, _flask


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_without_a_passphrase_nothing_is_written(app, ctx, backups_on):
    app.config["BACKUP_PASSPHRASE"] = None
    result = app.test_cli_runner().invoke(args=["backup", "create"])
    assert result.exit_code == 1
    assert "No backup passphrase is set: set BACKUP_PASSPHRASE or BACKUP_PASSPHRASE_FILE" in result.output
    assert _files(backups_on) == []
    assert db.session.scalars(select(Backup)).all() == []


def test_passphrase_from_a_file(app, ctx, backups_on, tmp_path):
    secret = tmp_path / "backup.passphrase"
    secret.write_text(PASSPHRASE + "\n")
    app.config.update(BACKUP_PASSPHRASE=None, BACKUP_PASSPHRASE_FILE=str(secret))
    made = backups.create_backup(trigger="command")
    assert backups.verify_file(backups_on / made.name, PASSPHRASE.encode()).ok  # the newline is not part of it


def test_create_writes_an_encrypted_file_and_its_hmac_and_verifies_it(app, ctx, backups_on, factories):
    factories.make_request()
    result = app.test_cli_runner().invoke(args=["backup", "create"])
    assert result.exit_code == 0, result.output
    name = result.output.split(":")[0]
    assert backups.NAME_RE.match(name)
    assert _files(backups_on) == [name, name + ".hmac"]  # no temporary file left behind
    content = (backups_on / name).read_bytes()
    assert content.startswith(b"Salted__") and b"CREATE TABLE" not in content
    row = db.session.scalar(select(Backup).where(Backup.name == name))
    assert (row.status, row.trigger, row.size_bytes) == ("verified", "command", len(content))
    assert row.table_counts["service_request"] == 1 and row.table_counts["alembic_version"] == 1
    assert f", {len(row.table_counts)} tables, " in result.output and "verified" in result.output

    listed = app.test_cli_runner().invoke(args=["backup", "list"])
    assert name in listed.output and "verified" in listed.output

    checked = app.test_cli_runner().invoke(args=["backup", "verify", name])
    assert checked.exit_code == 0 and "counts match those taken at dump time" in checked.output


def test_verify_names_what_is_wrong(app, ctx, backups_on, factories):
    admin = factories.make_user("admin")
    made = backups.create_backup(trigger="command")
    path = backups_on / made.name
    app.config["BACKUP_PASSPHRASE"] = "another passphrase"
    wrong = app.test_cli_runner().invoke(args=["backup", "verify", str(path)])
    assert wrong.exit_code == 1 and f"FAILED {made.name}: Wrong passphrase" in wrong.output
    app.config["BACKUP_PASSPHRASE"] = PASSPHRASE
    assert db.session.get(Backup, made.backup_id).status == "verified"  # the file is not to blame

    original = path.read_bytes()
    path.write_bytes(original[:-100])
    cut = app.test_cli_runner().invoke(args=["backup", "verify", made.name])
    assert cut.exit_code == 1 and "is truncated" in cut.output

    flipped = bytearray(original)
    flipped[-40] ^= 0x80
    path.write_bytes(bytes(flipped))
    bad = app.test_cli_runner().invoke(args=["backup", "verify", made.name])
    assert bad.exit_code == 1 and "is damaged" in bad.output
    db.session.expire_all()
    row = db.session.get(Backup, made.backup_id)
    assert row.status == "failed" and "is damaged" in row.error
    mails = db.session.scalars(select(Notification).where(Notification.kind == "backup_failed")).all()
    assert [m.recipient_id for m in mails] == [admin.id]  # one mail for this backup, however often it fails
    assert "Verification failed" in mails[0].payload["problem"]


def test_a_dump_cut_short_or_with_a_missing_table_does_not_verify(app, ctx, backups_on):
    """What the HMAC cannot catch (a dump that was incomplete when it was encrypted) the reading does."""
    made = backups.create_backup(trigger="command")
    keys, _ = backups.check_mac(backups_on / made.name, PASSPHRASE.encode())
    plain = b"".join(backups.decrypted_chunks(backups_on / made.name, keys))

    def check(sql: bytes, expected=None) -> str | None:
        scanner = backups.DumpScanner()
        scanner.feed(sql)
        scanner.finish()
        return backups._judge(scanner, expected)

    assert check(plain, made.tables) is None
    assert "incomplete" in check(plain[: plain.index(b"-- PostgreSQL database dump complete")])
    assert "no CREATE TABLE for comment" in check(plain.replace(b"CREATE TABLE public.comment (", b"-- "))
    assert "service_request: 0 rows in the file, 5 at dump time" in check(
        plain, {**made.tables, "service_request": 5})
    assert "not a pg_dump SQL dump" in check(b"SELECT 1;\n")


@pytest.mark.parametrize("size", [1, 3, 4096])
def test_the_dump_reader_counts_the_same_in_any_chunk_size(app, ctx, backups_on, factories, size):
    for _ in range(3):
        factories.make_request()
    made = backups.create_backup(trigger="command")
    keys, _ = backups.check_mac(backups_on / made.name, PASSPHRASE.encode())
    plain = b"".join(backups.decrypted_chunks(backups_on / made.name, keys))
    scanner = backups.DumpScanner()
    for start in range(0, len(plain), size):
        scanner.feed(plain[start:start + size])
    scanner.finish()
    assert backups._judge(scanner, made.tables) is None
    assert scanner.rows["service_request"] == 3


def test_two_backups_at_once_one_runs_the_other_is_told(app, backups_on):
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run():
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(backups.create_backup(trigger="command").name)
            except backups.BackupBusy as exc:
                outcomes.append(exc.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy = [o for o in outcomes if o.startswith("Another backup")]
    assert len(busy) == 1, outcomes
    assert len([n for n in _files(backups_on) if n.endswith(".enc")]) == 1


def test_back_up_now_twice_at_the_same_moment_queues_one(app, backups_on, factories):
    admin = factories.make_user("admin")
    admin_id = admin.id
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def ask():
        with app.app_context():
            from portal.models import User

            user = db.session.get(User, admin_id)
            barrier.wait()
            try:
                outcomes.append(f"queued {backups.request_backup(user).id}")
            except backups.BackupBusy as exc:
                outcomes.append(exc.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split(" ")[0] for o in outcomes) == ["A", "queued"], outcomes
    assert "already waiting for a worker" in [o for o in outcomes if o.startswith("A")][0]
    assert db.session.scalar(select(db.func.count()).select_from(Backup)) == 1


def _fake_pg_dump(tmp_path: Path, version_line: str, body: str) -> str:
    script = tmp_path / "pg_dump"
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{version_line}'; exit 0; fi\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_failing_pg_dump_marks_the_backup_failed_and_mails_the_admins(app, ctx, backups_on, factories, tmp_path):
    admin = factories.make_user("admin")
    major = backups.server_major()
    app.config["PG_DUMP"] = _fake_pg_dump(tmp_path, f"pg_dump (PostgreSQL) {major}.1",
                                          "echo 'pg_dump: error: connection to server failed' >&2; exit 1")
    try:
        with pytest.raises(backups.BackupError, match="pg_dump failed \\(exit 1\\): pg_dump: error: connection"):
            backups.create_backup(trigger="command")
    finally:
        app.config["PG_DUMP"] = None
    row = db.session.scalar(select(Backup))
    assert row.status == "failed" and "pg_dump failed" in row.error
    assert [p for p in _files(backups_on)] == []  # the partial file went
    mail = db.session.scalar(select(Notification).where(Notification.kind == "backup_failed"))
    assert mail.recipient_id == admin.id and "pg_dump failed" in mail.payload["problem"]


def test_a_pg_dump_of_another_major_version_is_refused(app, ctx, backups_on, tmp_path):
    major = backups.server_major()
    app.config["PG_DUMP"] = _fake_pg_dump(tmp_path, f"pg_dump (PostgreSQL) {major + 1}.0", "exit 0")
    try:
        with pytest.raises(ServiceError, match=f"is version {major + 1} but the server is PostgreSQL {major}"):
            backups.create_backup(trigger="command")
    finally:
        app.config["PG_DUMP"] = None
    assert _files(backups_on) == []


def _metric(client, name: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_show_the_last_success_its_size_and_verify_failures(app, ctx, backups_on, client):
    assert _metric(client, "backup_last_success_timestamp_seconds") == 0
    made = backups.create_backup(trigger="command")
    assert _metric(client, "backup_size_bytes") == made.size
    row = db.session.get(Backup, made.backup_id)
    assert _metric(client, "backup_last_success_timestamp_seconds") == pytest.approx(row.verified_at.timestamp())
    failures = _metric(client, "backup_verify_failures_total")
    (backups_on / made.name).write_bytes(b"Salted__" + b"\0" * 64)
    assert not backups.verify_backup(made.name).ok
    assert _metric(client, "backup_verify_failures_total") == failures + 1


def test_nightly_schedule_on_the_backup_queue(app, ctx):
    from portal.services import jobs

    entries = {item.id: item for item in jobs.schedule()}
    assert (entries["backup-database"].cron, entries["backup-database"].queue) == ("0 2 * * *", "backup")
    assert entries["prune-backups"].queue == "backup"
    app.config["SCHEDULE_OVERRIDES"] = {"backup-database": "30 1 * * *"}
    try:
        assert {i.id: i for i in jobs.schedule()}["backup-database"].cron == "30 1 * * *"
    finally:
        app.config["SCHEDULE_OVERRIDES"] = {}


def test_back_up_now_runs_on_a_real_worker(app, ctx, backups_on, factories):
    admin = factories.make_user("admin")
    row = backups.request_backup(admin)
    assert row.status == "queued"
    relay_outbox()
    env = _env(app) | {"BACKUP_DIR": str(backups_on), "BACKUP_PASSPHRASE": PASSPHRASE}
    done = subprocess.run(_flask("jobs", "worker", "--burst", "--queues", "backup"), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    db.session.expire_all()
    row = db.session.get(Backup, row.id)
    assert (row.status, row.trigger, row.requested_by_id) == ("verified", "manual", admin.id), row.error
    assert (backups_on / row.name).exists()
