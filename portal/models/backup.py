"""The backup catalog: one row per backup the portal made (or found in BACKUP_DIR), and what became of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._time import sql_in, utcnow

# queued: asked for on the admin page, waiting for a worker; running: dumping; verified: read back
# and every table's rows counted as at dump time; failed: the dump or its verification failed
# (`error` says why); unverified: a file found in BACKUP_DIR that this catalog never saw (after a
# restore, say) until someone verifies it.
BACKUP_STATUSES = ("queued", "running", "verified", "failed", "unverified")
BACKUP_TRIGGERS = ("scheduled", "manual", "command", "found")


class Backup(db.Model):
    """One encrypted backup file in BACKUP_DIR (`name` is its file name once the dump started).

    `table_counts` are the rows per table counted in the dump's own snapshot, so verification
    compares the file with exactly what was dumped. The row stays when retention deletes the file
    (`deleted_at`), so the history shows what was kept and what went.
    """

    __tablename__ = "backup"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(BACKUP_STATUSES)})", name="status"),
        CheckConstraint(f"trigger IN ({sql_in(BACKUP_TRIGGERS)})", name="trigger"),
        # Newest first on the admin page; the newest verified one for health, metrics and retention.
        Index("ix_backup_created", "created_at"),
        Index("ix_backup_verified", "verified_at", postgresql_where=text("status = 'verified'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="queued")
    trigger: Mapped[str] = mapped_column(String(10), nullable=False)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    table_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    server_version: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def total_rows(self) -> int | None:
        return sum(self.table_counts.values()) if self.table_counts else None
