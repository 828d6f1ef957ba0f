"""Server-side records of sign-ins, so a session can be ended on the server (sign-out, a reset, a lockout)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._time import utcnow


class UserSession(db.Model):
    """One sign-in: the browser's cookie (and its "keep me signed in" cookie) carry a random token whose
    SHA-256 is kept here. A request counts as signed in only while its row is not revoked, not past
    `expires_at` (the absolute lifetime) and seen within the idle timeout."""

    __tablename__ = "user_session"
    __table_args__ = (
        # A person's live sessions (the security page, "end my other sessions", a reset or lockout).
        Index("ix_user_session_live", "user_id", postgresql_where=text("revoked_at IS NULL")),
        Index("ix_user_session_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(30))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))
