"""What the admin's Backups page needs beside the backup service (portal/services/backups.py):
the settings in words, verifications still waiting for a worker, and audited downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import select

from portal.extensions import db
from portal.formatting import format_cron
from portal.models import Backup, OutboxMessage
from portal.policy import require
from portal.queueing import JOB_QUEUES, get_queue, redis_connection
from portal.services import audit, backups
from portal.services.errors import NotFound
from portal.services.uow import unit_of_work

BACKUP_JOB_ID = "backup-database"      # the nightly entry of portal.queueing.SCHEDULE
VERIFY_FUNC = "jobs.backup.verify_backup"
NO_SUCH_BACKUP = "There is no such backup file."


@dataclass(frozen=True)
class BackupSettings:
    """The settings the page states at the top; `problem` says, in words, why backups cannot be made."""

    problem: str | None
    schedule: str | None       # "every night at 02:00 UTC", or None when the entry is missing or invalid
    retention_days: int
    directory: str


def settings() -> BackupSettings:
    """Passphrase configured?, the nightly schedule (from the job schedule), retention and BACKUP_DIR."""
    from flask import current_app

    from portal.services import jobs

    problem = None
    try:
        backups.passphrase()
    except backups.BackupError as exc:  # none set, or BACKUP_PASSPHRASE_FILE cannot be read
        problem = exc.message
    try:
        entry = next((item for item in jobs.schedule() if item.id == BACKUP_JOB_ID), None)
    except ValueError:  # an invalid SCHEDULE_BACKUP_DATABASE override; `flask doctor` names it
        entry = None
    return BackupSettings(problem, format_cron(entry.cron) if entry else None,
                          current_app.config["RETENTION_DAYS"], str(backups.backup_dir()))


def pending_verifications() -> set[str]:
    """Names of backups with a verification asked for and not yet done (in the outbox, waiting or running).

    The catalog row keeps its status until the worker records the outcome, so the page asks the queue.
    Redis being unreachable hides the ones already relayed; the page then simply stops polling for them.
    """
    names = {str(row.args[0]) for row in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.relayed_at.is_(None), OutboxMessage.func == VERIFY_FUNC))
        if row.args}
    try:
        connection = redis_connection()
        queue = get_queue(JOB_QUEUES[VERIFY_FUNC], connection)
        ids = list(queue.job_ids) + queue.started_job_registry.get_job_ids()
        for job in Job.fetch_many(ids, connection=connection):
            if job is not None and job.func_name == VERIFY_FUNC and job.args:
                names.add(str(job.args[0]))
    except RedisError:
        pass
    return names


def file_for_download(actor: Any, name: str, hmac_file: bool = False) -> Path:
    """The backup file (or its .hmac) for an admin to download; the download is written to the audit log.

    Only names of our own form inside BACKUP_DIR are served; anything else is "not found", never a
    path elsewhere (a symlink out of the directory included).
    """
    require(actor, "system.backups")
    try:
        path = backups.backup_path(name)
    except backups.BackupError as exc:
        raise NotFound(NO_SUCH_BACKUP) from exc
    if hmac_file:
        path = path.with_name(path.name + backups.MAC_SUFFIX)
    directory = backups.backup_dir().resolve()
    if not path.is_file() or path.resolve().parent != directory:
        raise NotFound(NO_SUCH_BACKUP)
    with unit_of_work():
        row_id = db.session.scalar(select(Backup.id).where(Backup.name == name))
        # entity_id 0: a file the catalog never saw (the name, in `after`, says which)
        audit.record(actor, "backup.downloaded", "backup", row_id or 0, None,
                     {"name": name, "file": path.name, "size": path.stat().st_size})
    return path
