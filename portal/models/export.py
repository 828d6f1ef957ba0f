"""Exports and reports: one row per file a user asked for, and the daily trend aggregate reports read."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._time import sql_in, utcnow
from portal.models.service_request import ServiceRequest
from portal.models.sla import SlaMetric
from portal.models.user import User

EXPORT_KINDS = ("requests_csv", "requests_pdf", "sla_report")
EXPORT_STATUSES = ("queued", "running", "done", "failed")


class Export(db.Model):
    """A CSV or PDF of the request list, or an SLA analytics report, made by a background job.

    `params` holds what was asked for: the list's filters and sort, or the report's period.
    `file_path` is relative to EXPORT_DIR; the file and the row go when `expires_at` passes.
    """

    __tablename__ = "export"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(EXPORT_KINDS)})", name="kind"),
        CheckConstraint(f"status IN ({sql_in(EXPORT_STATUSES)})", name="status"),
        # "My exports, newest first" and the daily clean-up of expired ones.
        Index("ix_export_owner_created", "owner_id", "created_at"),
        Index("ix_export_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="queued")
    rows_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_path: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    gzipped: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    owner: Mapped[User] = relationship()


class TrendDaily(db.Model):
    """Per UTC day, category and priority: requests created and resolved, SLA met/missed and breaches.

    Counted by the day each event happened, so the hourly trend job only recomputes recent days
    (an upsert, the same numbers however often it runs) and reports never scan the requests.
    """

    __tablename__ = "trend_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    priority: Mapped[str] = mapped_column(String(20), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    resolved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    resolved_within_sla: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    resolved_late: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    response_breached: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    resolution_breached: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


# The trend job counts one day at a time by when things happened; these (and ServiceRequest's
# ix_service_request_created_id for created_at) make each count an index range scan instead of a
# pass over every request (migrations 0005_exports, 0012_list_at_scale).
Index("ix_service_request_resolved_at", ServiceRequest.resolved_at,
      postgresql_where=ServiceRequest.resolved_at.is_not(None))
Index("ix_sla_metric_response_breached_at", SlaMetric.response_breached_at,
      postgresql_where=SlaMetric.response_breached_at.is_not(None))
Index("ix_sla_metric_resolution_breached_at", SlaMetric.resolution_breached_at,
      postgresql_where=SlaMetric.resolution_breached_at.is_not(None))
