"""Mail notifications: one row per event and recipient (the idempotency key), and preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.notifications import IN_APP_KINDS, KINDS, STATUSES
from portal.extensions import db
from portal.models._time import sql_in, utcnow
from portal.models.user import User


class Notification(db.Model):
    """Something to tell one person: written with the change that caused it, sent by the email queue.

    `key` (event + recipient) is unique, so an event retried or seen twice never makes a second
    row; a row is marked sent in the same transaction as its mail went out, so a retried job
    never sends it again.
    """

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(tuple(KINDS))})", name="kind"),
        CheckConstraint(f"status IN ({sql_in(STATUSES)})", name="status"),
        # Delivery reads a person's pending rows, the digest their held rows, the flood rule their
        # recent mails: small partial indexes, whatever the history.
        Index("ix_notification_pending", "recipient_id", "id", postgresql_where=text("status = 'pending'")),
        Index("ix_notification_held", "recipient_id", "id", postgresql_where=text("status = 'held'")),
        Index("ix_notification_sent", "recipient_id", "sent_at", postgresql_where=text("status = 'sent'")),
        Index("ix_notification_recipient", "recipient_id", "id"),
        # The bell's unread count and "mark all read": a person's unread in-app rows, however long the history.
        Index("ix_notification_unread", "recipient_id", "id",
              postgresql_where=text(f"read_at IS NULL AND kind IN ({sql_in(IN_APP_KINDS)})")),
        Index("ix_notification_request", "request_id"),
        Index("ix_notification_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("service_request.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # seen under the bell (in-app kinds)
    message_id: Mapped[str | None] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(64))

    recipient: Mapped[User] = relationship()


class NotificationSetting(db.Model):
    """A person's choices: the kinds they turned off, and SLA alerts hourly instead of one by one."""

    __tablename__ = "notification_setting"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    muted_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(30)), nullable=False, default=list)
    sla_digest: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

