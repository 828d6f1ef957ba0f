"""Backup jobs (`backup` queue): the nightly encrypted backup, verifying one on demand, retention."""

from __future__ import annotations

from jobs._context import app_context, record_meta


def create_backup(backup_id: int | None = None) -> dict:
    """Dump, encrypt, write and verify a backup; `backup_id` is the catalog row "Back up now" made."""
    from portal.services import backups

    with app_context():
        result = backups.create_backup(backup_id, trigger="manual" if backup_id else "scheduled",
                                       progress=lambda done: record_meta(bytes_dumped=done))
    summary = {"name": result.name, "size": result.size, "rows": sum(result.tables.values()),
               "seconds": round(result.seconds, 1)}
    record_meta(**summary)
    return summary


def verify_backup(name: str) -> dict:
    """Read one backup back (HMAC, decryption, every table's rows) and record the outcome in the catalog."""
    from portal.services import backups

    with app_context():
        result = backups.verify_backup(name)
    summary = {"name": name, "ok": result.ok, "problem": result.problem}
    record_meta(**summary)
    return summary


def prune_backups() -> list[str]:
    """Delete backups older than RETENTION_DAYS, never the newest verified one; daily."""
    from portal.services import backups

    with app_context():
        deleted = backups.prune_backups()
    record_meta(deleted=deleted)
    return deleted
