"""Retention: old backups go, but never the newest verified one, and never a file the portal did not write."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Backup
from portal.services import backups

NOW = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


def _backup(directory, age: timedelta, status: str | None = None) -> str:
    made = NOW - age
    name = made.strftime(backups.NAME_FORMAT)
    (directory / name).write_bytes(b"Salted__12345678 not a real backup")
    (directory / (name + ".hmac")).write_text("file: " + name)
    if status is not None:
        db.session.add(Backup(name=name, status=status, trigger="scheduled", created_at=made,
                              verified_at=made if status == "verified" else None))
        db.session.commit()
    return name


def test_prune_keeps_recent_and_the_newest_verified_backup(app, ctx, backups_on):
    backups_on.mkdir()
    app.config["RETENTION_DAYS"] = 30
    ancient_verified = _backup(backups_on, timedelta(days=90), "verified")
    newest_verified = _backup(backups_on, timedelta(days=45), "verified")   # past 30 days, but the newest verified
    old_failed = _backup(backups_on, timedelta(days=31), "failed")
    old_unknown = _backup(backups_on, timedelta(days=40))                   # not in the catalog
    recent_failed = _backup(backups_on, timedelta(days=29, hours=23), "failed")
    recent = _backup(backups_on, timedelta(days=1))
    (backups_on / "backup_manual.sql.gz").write_bytes(b"an operator's own file")
    (backups_on / "notes.txt").write_text("keep me")
    (backups_on / "backup_20200101_000000.sql.gz.enc.bak").write_text("not our name")
    partial = backups_on / ".partial-backup_20261101_020000.sql.gz.enc"
    partial.write_bytes(b"interrupted")
    fresh_partial = backups_on / ".partial-backup_20261202_030000.sql.gz.enc"
    fresh_partial.write_bytes(b"being written now")
    orphan_mac = backups_on / "backup_20261001_020000.sql.gz.enc.hmac"
    orphan_mac.write_text("its backup is gone")
    two_days_ago = (NOW - timedelta(days=2)).timestamp()
    for path in (partial, orphan_mac):
        os.utime(path, (two_days_ago, two_days_ago))
    os.utime(fresh_partial, (NOW.timestamp(), NOW.timestamp()))

    deleted = backups.prune_backups(now=NOW)

    assert sorted(deleted) == sorted([ancient_verified, old_failed, old_unknown])
    left = sorted(p.name for p in backups_on.iterdir())
    assert left == sorted([
        newest_verified, newest_verified + ".hmac", recent_failed, recent_failed + ".hmac", recent, recent + ".hmac",
        "backup_manual.sql.gz", "notes.txt", "backup_20200101_000000.sql.gz.enc.bak", fresh_partial.name])
    rows = {row.name: row for row in db.session.scalars(select(Backup))}
    assert rows[ancient_verified].deleted_at is not None and rows[old_failed].deleted_at is not None
    assert rows[newest_verified].deleted_at is None
    listed = [item.name for item in backups.list_backups()]
    assert ancient_verified not in listed and newest_verified in listed and old_unknown not in listed

    assert backups.prune_backups(now=NOW) == []  # a second run finds nothing more


def test_prune_command_says_what_it_did(app, ctx, backups_on):
    backups_on.mkdir()
    app.config["RETENTION_DAYS"] = 7
    old = _backup(backups_on, timedelta(days=400))
    result = app.test_cli_runner().invoke(args=["backup", "prune"])
    assert result.exit_code == 0
    assert result.output.strip().startswith("Deleted") and old in result.output and "older than 7 days" in result.output
    app.config["RETENTION_DAYS"] = 30
